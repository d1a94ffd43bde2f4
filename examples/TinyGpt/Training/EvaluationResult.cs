namespace TinyGpt;

/// <summary>Token-weighted totals of an evaluation pass.</summary>
/// <param name="NllSum">Σ of the unsmoothed negative log-likelihood over all counted tokens, in nats.</param>
/// <param name="Tokens">Number of counted tokens.</param>
/// <param name="Seconds">Wall time of the pass.</param>
public sealed record EvaluationResult(double NllSum, long Tokens, double Seconds)
{
    /// <summary>Cross-entropy in nats per token.</summary>
    public double MeanNll => NllSum / Tokens;

    /// <summary>exp(mean NLL).</summary>
    public double Perplexity => Math.Exp(MeanNll);
}
