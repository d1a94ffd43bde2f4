namespace TinyGpt;

/// <summary>One row of a run's metrics: every step has a training loss, evaluation steps also a validation loss.</summary>
/// <param name="Step">Optimiser step (1-based).</param>
/// <param name="LearningRate">Learning rate used at this step.</param>
/// <param name="TrainLoss">Mean unsmoothed NLL of this step's batch, nats per token.</param>
/// <param name="ValLoss">Mean NLL on the whole validation split, when evaluated at this step.</param>
/// <param name="TrainSeconds">Wall time of the optimiser steps up to this one (resumed runs continue the count).</param>
/// <param name="EvalSeconds">Wall time of the validation passes up to this step (resumed runs continue the count).</param>
public sealed record MetricsRow(int Step, double LearningRate, double TrainLoss, double? ValLoss, double TrainSeconds, double EvalSeconds)
{
    /// <summary>Training plus evaluation seconds: the run's wall time up to this step, apart from logging and checkpoints.</summary>
    public double ElapsedSeconds => TrainSeconds + EvalSeconds;

    /// <summary>exp(<see cref="TrainLoss"/>).</summary>
    public double TrainPerplexity => Math.Exp(TrainLoss);

    /// <summary>exp(<see cref="ValLoss"/>), when evaluated.</summary>
    public double? ValPerplexity => ValLoss is { } v ? Math.Exp(v) : null;

    /// <summary>Top-1 accuracy on the validation split, when evaluated with calibration.</summary>
    public double? ValAccuracy { get; init; }

    /// <summary>Expected calibration error on the validation split, when evaluated with calibration.</summary>
    public double? ValEce { get; init; }

    /// <summary>Mean top-1 probability on the validation split, when evaluated with calibration.</summary>
    public double? ValConfidence { get; init; }
}
