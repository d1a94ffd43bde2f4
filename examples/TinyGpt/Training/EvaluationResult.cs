using TorchLoss.Metrics;

namespace TinyGpt;

/// <summary>An evaluation pass: its token-weighted totals, its calibration when measured, and how long it took.</summary>
/// <param name="Totals">Σ unsmoothed NLL and Σ tokens over every scored token, from a <see cref="PerplexityTracker"/>.</param>
/// <param name="Seconds">Wall time of the pass.</param>
/// <param name="Calibration">Accuracy, confidence and calibration error over the same tokens, from a <see cref="CalibrationTracker"/>; null when not measured.</param>
public sealed record EvaluationResult(PerplexitySnapshot Totals, double Seconds, CalibrationSnapshot? Calibration = null)
{
    /// <summary>Σ of the unsmoothed negative log-likelihood over all counted tokens, in nats.</summary>
    public double NllSum => Totals.NllSum;

    /// <summary>Number of counted tokens.</summary>
    public long Tokens => Totals.Tokens;

    /// <summary>Cross-entropy in nats per token.</summary>
    public double MeanNll => Totals.MeanNll;

    /// <summary>exp(mean NLL).</summary>
    public double Perplexity => Totals.Perplexity;

    /// <summary>Cross-entropy in bits per token.</summary>
    public double BitsPerToken => Totals.BitsPerToken;
}
