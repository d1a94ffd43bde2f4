using static TorchSharp.torch;

namespace TorchLoss;

/// <summary>
/// The one Σ a·(log a − log b) of the library, over the last dimension, with 0·log 0 = 0 in the value and in the
/// gradient: entries where a = 0 (a −∞ logit: one-hot or top-k filtered distributions) contribute nothing, and are
/// replaced before the product, so that neither the value nor its gradient becomes 0·∞ = NaN.
/// Entropy, cross-entropy and every divergence are this sum: pass log a = 0 for −Σ a·log b (the cross-entropy),
/// and log b = 0 for Σ a·log a (the negative entropy).
/// </summary>
internal static class RelativeEntropy
{
    public static Tensor Sum(Tensor a, Tensor logA, Tensor logB)
    {
        var present = a.gt(0);
        var difference = where(present, logA - logB, zeros_like(a));
        return (a * difference).sum(-1);
    }

    /// <summary>A zero of <paramref name="like"/>'s dtype and device, to stand for log a or log b in <see cref="Sum"/>.</summary>
    public static Tensor Zero(Tensor like) => zeros(Array.Empty<long>(), like.dtype, like.device);
}
