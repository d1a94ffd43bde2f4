using TorchLoss.Metrics;

namespace LabelSmoothing;

/// <summary>What one model (or the true source) scores on the whole validation split.</summary>
/// <param name="Name">The run's label.</param>
/// <param name="MeanNll">Unsmoothed cross-entropy in nats per character.</param>
/// <param name="Calibration">Accuracy, confidence, entropy and calibration error over the same characters.</param>
/// <param name="TrainSeconds">Training wall time (including the final validation pass); 0 for the source.</param>
public sealed record RunResult(string Name, double MeanNll, CalibrationSnapshot Calibration, double TrainSeconds)
{
    /// <summary>exp(<see cref="MeanNll"/>).</summary>
    public double Perplexity => Math.Exp(MeanNll);
}
