using TorchLoss.Kernels;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TorchLoss;

/// <summary>The per-token log-probabilities behind <see cref="SequenceLogProbs"/>, on the fused kernel or libtorch.</summary>
internal static class SequenceLogProbComputation
{
    /// <summary>
    /// log p(target[n] | logits[n]) for every counted row of <paramref name="logits"/> [N, V], 0 elsewhere; [N], differentiable.
    /// A row's log-probability is minus its unsmoothed cross-entropy, so the fused path is the cross-entropy kernel with
    /// ε = 0, no z-loss and per-row losses: its forward writes −∂/∂logits of each row, its backward scales rows by the
    /// incoming gradient.
    /// </summary>
    public static Tensor TokenLogProbs(Tensor logits, PreparedTargets targets, CrossEntropyBackend backend)
    {
        using var scope = NewDisposeScope();
        Tensor result;
        if (FusedCrossEntropyPath.IsSelected(logits, backend))
        {
            var x = (logits.dtype is ScalarType.Float32 or ScalarType.Float64 ? logits : logits.to(ScalarType.Float32)).contiguous();
            var call = new FusedCrossEntropyCall { PerRow = true, NeedGradient = is_grad_enabled() && x.requires_grad };
            result = FusedCrossEntropyFunction.Apply(x, targets.Target.contiguous(), targets.Counted.contiguous(), call).neg();
        }
        else
        {
            var x = logits.dtype is ScalarType.Float16 or ScalarType.BFloat16 ? logits.to(ScalarType.Float32) : logits;
            var counted = targets.Counted;
            var safeTargets = targets.Target.masked_fill(counted.logical_not(), 0).unsqueeze(1);
            var picked = F.log_softmax(x, 1).gather(1, safeTargets).squeeze(1);
            // where, not a product: an uncounted row may be all −inf or NaN (padding), and NaN · 0 is NaN.
            result = where(counted, picked, zeros_like(picked));
        }
        return result.MoveToOuterDisposeScope();
    }
}
