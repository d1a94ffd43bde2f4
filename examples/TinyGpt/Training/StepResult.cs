namespace TinyGpt;

/// <summary>What one optimiser step did.</summary>
/// <param name="Step">The step number, 1-based (the number of steps done after it).</param>
/// <param name="LearningRate">The learning rate it used.</param>
/// <param name="Loss">The objective it minimised: the (smoothed) cross-entropy plus z-loss, per token.</param>
/// <param name="NllSum">Σ of the unsmoothed negative log-likelihood over its tokens, in nats.</param>
/// <param name="Tokens">Tokens it learned from (all micro-batches).</param>
/// <param name="GradNorm">Global gradient norm before clipping.</param>
public sealed record StepResult(int Step, double LearningRate, double Loss, double NllSum, long Tokens, double GradNorm)
{
    /// <summary>Mean unsmoothed NLL per token (nats): what perplexity is made of.</summary>
    public double MeanNll => NllSum / Tokens;
}
