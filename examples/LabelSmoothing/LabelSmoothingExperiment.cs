using System.Diagnostics;
using Microsoft.Extensions.Logging;
using TinyGpt;
using TorchLoss.Metrics;
using static TorchSharp.torch;

namespace LabelSmoothing;

/// <summary>
/// Trains the same TinyGpt from the same seed and data order once per <see cref="SmoothingSetting"/>, for equal steps,
/// and scores each on the whole validation split: unsmoothed cross-entropy and perplexity, accuracy, calibration
/// error, confidence and entropy. On the embedded corpus it also scores the true source, whose next-character
/// probabilities are exact: the reference a perfectly calibrated, perfectly informed model would reach.
/// </summary>
public sealed class LabelSmoothingExperiment(LabelSmoothingOptions options, ILogger logger)
{
    /// <summary>The label of the true source's row.</summary>
    public const string SourceName = "true source (exact probabilities)";

    /// <summary>The experiment's sizes.</summary>
    public LabelSmoothingOptions Options { get; } = options ?? throw new ArgumentNullException(nameof(options));

    /// <summary>The corpus the runs train on, loaded by <see cref="Run"/>.</summary>
    public CorpusData? Data { get; private set; }

    /// <summary>Runs every setting (and the source reference on the embedded corpus), in order.</summary>
    /// <exception cref="CorpusException">The corpus cannot be used.</exception>
    public IReadOnlyList<RunResult> Run()
    {
        Options.Validate();
        var data = Data = CorpusData.Load(Options.Corpus, "char", Options.Model.ContextLength, Options.Trainer.Seed);
        logger.LogInformation("corpus: {Corpus}; {Train:N0} training and {Val:N0} validation characters; vocabulary {Vocab}",
            data.Description, data.Train.Length, data.Validation.Length, data.VocabularySize);
        using var validation = new ValidationText(data.Validation, Options.Model.ContextLength, Options.EvalBatch);
        var results = new List<RunResult>();
        foreach (var setting in SmoothingSetting.All)
            results.Add(Train(setting, data, validation));
        if (data.Source is { } source)
            results.Add(SourceReference(source, data));
        return results;
    }

    private RunResult Train(SmoothingSetting setting, CorpusData data, ValidationText validation)
    {
        logger.LogInformation("training with {Setting} for {Steps} steps", setting.Name, Options.Trainer.Steps);
        var watch = Stopwatch.StartNew();
        manual_seed(Options.Trainer.TorchSeed);   // the same initial weights for every run
        using var model = new Gpt(Options.Model with { VocabSize = data.VocabularySize });
        var trainerOptions = Options.Trainer with
        {
            WarmupSteps = Math.Min(Options.Trainer.WarmupSteps, Options.Trainer.Steps),
            Loss = setting.LossOptions,
        };
        using var trainer = new GptTrainer(model, trainerOptions);
        using var batches = new RandomWindowBatches(data.Train, Options.Batch, Options.Model.ContextLength, Options.Trainer.Seed);
        trainer.Fit(batches, validation, new FitOptions { Logger = logger });
        var final = trainer.LastEvaluation ?? throw new InvalidOperationException("The run ended without its validation pass.");
        return new RunResult(setting.Name, final.MeanNll, final.Calibration!, watch.Elapsed.TotalSeconds);
    }

    /// <summary>
    /// The source's own predictions: at every validation position with k characters before it, its exact next-character
    /// distribution. Its ECE is not 0 only by sampling noise of a finite split: the floor any model's ECE is read against.
    /// </summary>
    private RunResult SourceReference(MarkovTextSource source, CorpusData data)
    {
        int k = source.Order;
        char[] alphabet = Enumerable.Range(0, data.VocabularySize).Select(id => data.Tokenizer.Decode([id]).Single()).ToArray();
        string text = data.Tokenizer.Decode(data.Validation);
        int n = text.Length - k, classes = alphabet.Length;
        var logits = new double[(long)n * classes];
        var targets = new long[n];
        for (int t = k; t < text.Length; t++)
        {
            var distribution = source.NextDistribution(text.Substring(t - k, k), alphabet);
            for (int c = 0; c < classes; c++)
                // A character the source never emits here gets a logit whose probability underflows to exactly 0.
                logits[(long)(t - k) * classes + c] = distribution[c] > 0 ? Math.Log(distribution[c]) : -1e9;
            targets[t - k] = Array.IndexOf(alphabet, text[t]);
        }
        using var calibration = new CalibrationTracker();
        using (var scope = NewDisposeScope())
            calibration.Update(tensor(logits, [n, classes]), tensor(targets));
        double nll = -source.LogLikelihood(text) / n;
        logger.LogInformation("true source on the validation split: {Nll:F4} nats/char (entropy rate {H:F4})", nll, source.EntropyRate);
        return new RunResult(SourceName, nll, calibration.Snapshot(), 0);
    }
}
