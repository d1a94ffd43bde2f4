using Microsoft.Extensions.Logging;
using TorchLoss.Metrics;

namespace TinyGpt;

/// <summary>
/// The progress lines of a training run: a validation line per evaluation and a progress line every log interval, whose
/// tokens per second count the optimiser steps' time only (validation passes excluded) and whose ETA uses the wall time.
/// </summary>
public sealed class TrainingLog
{
    private readonly ILogger? logger;
    private readonly int steps;
    private readonly int stopAt;
    private readonly int firstStep;
    private readonly double wallSecondsAtStart;
    private long windowTokens;
    private double windowStartTrainingSeconds;

    /// <summary>Starts the log of a run that goes from <paramref name="firstStep"/> to <paramref name="stopAt"/> of <paramref name="steps"/>.</summary>
    /// <param name="logger">Where the lines go; null writes nothing.</param>
    /// <param name="steps">The schedule's step count.</param>
    /// <param name="stopAt">The step this run stops after.</param>
    /// <param name="firstStep">The step the run starts from (later than 0 when resumed).</param>
    /// <param name="trainingSecondsAtStart">Training seconds done before this run (resumed runs).</param>
    /// <param name="wallSecondsAtStart">Training plus evaluation seconds done before this run (resumed runs).</param>
    public TrainingLog(ILogger? logger, int steps, int stopAt, int firstStep, double trainingSecondsAtStart, double wallSecondsAtStart)
    {
        windowStartTrainingSeconds = trainingSecondsAtStart;
        this.logger = logger;
        this.steps = steps;
        this.stopAt = stopAt;
        this.firstStep = firstStep;
        this.wallSecondsAtStart = wallSecondsAtStart;
    }

    /// <summary>Counts the tokens of a step just trained toward the next progress line.</summary>
    public void Trained(long tokens) => windowTokens += tokens;

    /// <summary>Logs a validation pass.</summary>
    public void Evaluated(int step, EvaluationResult evaluation)
    {
        ArgumentNullException.ThrowIfNull(evaluation);
        if (evaluation.Calibration is { } c)
            logger?.LogInformation("step {Step}/{Steps} | validation loss {Loss:F4} | ppl {Ppl:F3} | accuracy {Accuracy:P2} | confidence {Confidence:P2} | ECE {Ece:F4} | {Tokens:N0} tokens in {Seconds:F1}s",
                step, steps, evaluation.MeanNll, evaluation.Perplexity, c.Accuracy, c.MeanConfidence, c.Ece, evaluation.Tokens, evaluation.Seconds);
        else
            logger?.LogInformation("step {Step}/{Steps} | validation loss {Loss:F4} | ppl {Ppl:F3} | {Tokens:N0} tokens in {Seconds:F1}s",
                step, steps, evaluation.MeanNll, evaluation.Perplexity, evaluation.Tokens, evaluation.Seconds);
    }

    /// <summary>Logs the training loss of the steps since the previous progress line, their speed and the time left.</summary>
    /// <param name="step">The step just done.</param>
    /// <param name="window">The training totals of the steps since the previous line.</param>
    /// <param name="learningRate">The step's learning rate.</param>
    /// <param name="trainingSeconds">The trainer's <see cref="GptTrainer.TrainingSeconds"/> now.</param>
    /// <param name="wallSeconds">Training plus evaluation seconds now.</param>
    public void Progress(int step, PerplexitySnapshot window, double learningRate, double trainingSeconds, double wallSeconds)
    {
        double windowSeconds = trainingSeconds - windowStartTrainingSeconds;
        double perStep = (wallSeconds - wallSecondsAtStart) / (step - firstStep);
        logger?.LogInformation("step {Step}/{Steps} | loss {Loss:F4} | ppl {Ppl:F3} | lr {Lr:E2} | {TokensPerSecond:N0} tok/s | ETA {Eta}",
            step, steps, window.MeanNll, window.Perplexity, learningRate, windowTokens / windowSeconds, FormatDuration(perStep * (stopAt - step)));
        windowTokens = 0;
        windowStartTrainingSeconds = trainingSeconds;
    }

    /// <summary>"1m05s"-style duration for log lines.</summary>
    public static string FormatDuration(double seconds)
    {
        if (double.IsNaN(seconds) || double.IsInfinity(seconds))
            return "?";
        var span = TimeSpan.FromSeconds(Math.Max(0, seconds));
        return span.TotalHours >= 1 ? $"{(int)span.TotalHours}h{span.Minutes:D2}m" : span.TotalMinutes >= 1 ? $"{(int)span.TotalMinutes}m{span.Seconds:D2}s" : $"{span.TotalSeconds:F0}s";
    }
}
