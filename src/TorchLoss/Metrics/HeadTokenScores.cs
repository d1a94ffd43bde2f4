using static TorchSharp.torch;

namespace TorchLoss.Metrics;

/// <summary>
/// Per-token scores of an output head, computed by <see cref="ChunkedHeadMetrics.Score"/> from hidden states and the head
/// weight without the [..., V] logits. Every tensor has the targets' shape ([B, T] in causal mode, position t scored
/// against label t+1); uncounted positions hold 0 (false in <see cref="Correct"/>). Dispose it, or let a dispose scope do so.
/// </summary>
/// <param name="Nll">Unsmoothed negative log-likelihood of the target, float64 (float32 computation for float32 inputs).</param>
/// <param name="Confidence">The top-1 probability, float64.</param>
/// <param name="Correct">Bool: the most probable class is the target.</param>
/// <param name="Counted">Bool: the position is scored (not ignored, not masked, not the last position in causal mode).</param>
public sealed record HeadTokenScores(Tensor Nll, Tensor Confidence, Tensor Correct, Tensor Counted) : IDisposable
{
    /// <summary>Frees the four tensors.</summary>
    public void Dispose()
    {
        Nll.Dispose();
        Confidence.Dispose();
        Correct.Dispose();
        Counted.Dispose();
    }
}
