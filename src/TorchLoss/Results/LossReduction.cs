using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss;

/// <summary>
/// The one rule that turns per-position losses into what is backpropagated, for every family and both paths
/// (libtorch tensors and the fused kernels' plain scale factor):
/// <list type="bullet">
/// <item><see cref="nn.Reduction.None"/>: the per-position losses, in the positions' shape;</item>
/// <item>a normaliser n (gradient accumulation): Σ loss / n, whatever the reduction;</item>
/// <item><see cref="nn.Reduction.Sum"/>: Σ loss;</item>
/// <item><see cref="nn.Reduction.Mean"/>: Σ loss / D, with D the counted positions (or Σ w[target] for a weighted
/// cross-entropy, as torch's); 0 when nothing is counted, never 0/0.</item>
/// </list>
/// </summary>
internal static class LossReduction
{
    /// <summary>
    /// The reduced loss of <paramref name="perPosition"/> [N] (uncounted entries already 0); <paramref name="meanDenominator"/>
    /// gives D for a mean, as a tensor on the losses' device, so no value is read back.
    /// </summary>
    public static Tensor Reduce(Tensor perPosition, nn.Reduction reduction, long? normalizer, Func<Tensor> meanDenominator, long[] perPositionShape)
    {
        if (reduction == nn.Reduction.None) return perPosition.reshape(perPositionShape);
        var sum = perPosition.sum();
        if (FixedDivisor(reduction, normalizer) is { } divisor)
            return divisor == 1 ? sum : sum / divisor;
        // An integer count divides a floating sum as it is (true division keeps the sum's dtype): one conversion less per call.
        var denominator = meanDenominator();
        return sum / (denominator.is_floating_point() ? denominator.to(sum.dtype) : denominator);
    }

    /// <summary>
    /// The same rule as a factor on Σ loss (and on every gradient value), for the fused kernels: 1 for per-position
    /// losses; a mean divides by <paramref name="meanDenominator"/> and is 0 (factor 1 on a zero sum) when
    /// <paramref name="countedPositions"/> is 0.
    /// </summary>
    public static double Scale(nn.Reduction reduction, long? normalizer, double meanDenominator, long countedPositions)
    {
        if (reduction == nn.Reduction.None) return 1.0;
        if (FixedDivisor(reduction, normalizer) is { } divisor) return 1.0 / divisor;
        return countedPositions == 0 ? 1.0 : 1.0 / meanDenominator;
    }

    /// <summary>D of a mean over <paramref name="countedPositions"/> (int64 scalar): at least 1, so an empty batch gives 0.</summary>
    public static Tensor CountDenominator(Tensor countedPositions) => countedPositions.clamp_min(1);

    // The divisor known without looking at the data: a normaliser, or 1 for a sum; null for a mean.
    private static double? FixedDivisor(nn.Reduction reduction, long? normalizer) =>
        normalizer is { } n ? n : reduction == nn.Reduction.Sum ? 1.0 : null;
}
