using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TorchLoss;

/// <summary>
/// The computation behind <see cref="TokenCrossEntropy"/> (causal or not), on logits [N, C] and
/// targets prepared by <see cref="TargetPreparation.Prepare"/>.
/// </summary>
internal static class CrossEntropyComputation
{
    public static LossResult Compute(Tensor logits, PreparedTargets targets, CrossEntropyOptions options, long? normalizer)
    {
        if (targets.IsSoft)
        {
            if (options.Backend == CrossEntropyBackend.Fused)
                throw new ArgumentException("CrossEntropyBackend.Fused takes class-index targets; soft (probability) targets run on Auto or LibTorch.", nameof(options));
        }
        else if (FusedCrossEntropyPath.IsSelected(logits, options.Backend))
        {
            return FusedCrossEntropyPath.Compute(logits, targets, options, normalizer);
        }

        using var scope = NewDisposeScope();
        long classes = logits.shape[1];
        // Half and bfloat16 lose too much in log-sum-exp; compute in float32 and give the gradient back in the input dtype.
        var x = logits.dtype is ScalarType.Float16 or ScalarType.BFloat16 ? logits.to(ScalarType.Float32) : logits;
        var counted = targets.Counted;
        var weights = targets.ClassWeights is null ? null : tensor(targets.ClassWeights, x.dtype, x.device);

        double epsilon = UniformEquivalent(options, classes);
        Tensor perToken;
        Tensor nll;
        Tensor? lse = null;
        if (targets.IsSoft)
        {
            (perToken, nll) = SoftTargetLosses(x, targets.Target.to(x.dtype), counted, weights, epsilon);
        }
        else if (epsilon == 0)
        {
            // libtorch's fused kernel; the mask is folded into the ignore index so it needs nothing else.
            var target = targets.Target;
            var torchTarget = targets.OnlyIgnoreIndex ? target : target.masked_fill(counted.logical_not(), options.IgnoreIndex);
            perToken = F.cross_entropy(x, torchTarget, weights, ignore_index: options.IgnoreIndex, reduction: nn.Reduction.None, label_smoothing: epsilon);
            if (epsilon == 0 && options.ZLossWeight == 0 && weights is null)
            {
                nll = perToken.detach();
            }
            else
            {
                // z-loss needs log-sum-exp in the graph; the unsmoothed NLL alone only needs it detached.
                if (options.ZLossWeight > 0) lse = x.logsumexp(1);
                nll = UnsmoothedNll(x, target, counted, lse);
            }
        }
        else
        {
            // Smoothed: libtorch's cross_entropy composes this very form from one log_softmax, so composing it here costs
            // the same and gives the unsmoothed NLL from that log_softmax instead of a second pass over the logits
            // (and an OtherClasses ε mapping to a Uniform ε' > 1, which libtorch rejects, works too):
            // (1 − ε')·w_t·(−log p_t) + (ε'/K)·Σ_j w_j·(−log p_j).
            var logProbs = F.log_softmax(x, 1);
            var safeTarget = targets.Target.masked_fill(counted.logical_not(), 0);
            var picked = -logProbs.gather(1, safeTarget.unsqueeze(1)).squeeze(1);
            var weightedPicked = weights is null ? picked : picked * weights.index_select(0, safeTarget);
            var all = weights is null ? -logProbs.sum(1) : -(logProbs * weights).sum(1);
            perToken = (1 - epsilon) * weightedPicked + (epsilon / classes) * all;
            perToken = where(counted, perToken, zeros_like(perToken));
            nll = where(counted, picked, zeros_like(picked)).detach();
        }

        Tensor zLoss;
        if (options.ZLossWeight > 0)
        {
            lse ??= x.logsumexp(1);
            var z = options.ZLossWeight * lse.square();
            z = where(counted, z, zeros_like(z));
            perToken = perToken + z;
            zLoss = z.detach().to(ScalarType.Float64).sum();
        }
        else
        {
            zLoss = zeros(Array.Empty<long>(), ScalarType.Float64, x.device);
        }

        var tokenCount = counted.sum(ScalarType.Int64);
        var nllSum = nll.to(ScalarType.Float64).sum();
        var loss = LossReduction.Reduce(perToken, options.Reduction, normalizer, () => targets.MeanDenominator(tokenCount), targets.PerTokenShape);

        var result = new LossResult(loss, nllSum, tokenCount, zLoss);
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>The ε of PyTorch's (Uniform) convention that gives the same target distribution.</summary>
    public static double UniformEquivalent(CrossEntropyOptions options, long classes) =>
        options.Smoothing == SmoothingKind.OtherClasses && options.LabelSmoothing > 0
            ? options.LabelSmoothing * classes / (classes - 1)
            : options.LabelSmoothing;

    /// <summary>
    /// torch's probability-target loss per row, Σ_j w_j·q'_j·(−log p_j) with q' = (1 − ε)·q + ε/K, and the
    /// unweighted, unsmoothed cross-entropy Σ_j q_j·(−log p_j) for metrics; both 0 on uncounted rows
    /// (whose targets <see cref="TargetPreparation.Prepare"/> already zeroed).
    /// </summary>
    private static (Tensor PerToken, Tensor Nll) SoftTargetLosses(Tensor x, Tensor q, Tensor counted, Tensor? weights, double epsilon)
    {
        var negLogProbs = -F.log_softmax(x, 1);
        var smoothed = epsilon > 0 ? (1 - epsilon) * q + epsilon / x.shape[1] : q;
        var perToken = ((weights is null ? smoothed : smoothed * weights) * negLogProbs).sum(1);
        perToken = where(counted, perToken, zeros_like(perToken));
        var nll = (q * negLogProbs.detach()).sum(1);
        return (perToken, nll);
    }

    private static Tensor UnsmoothedNll(Tensor x, Tensor target, Tensor counted, Tensor? lse)
    {
        using var _ = no_grad();
        var safeTarget = target.masked_fill(counted.logical_not(), 0);
        var nll = (lse ?? x.logsumexp(1)) - x.gather(1, safeTarget.unsqueeze(1)).squeeze(1);
        return where(counted, nll, zeros_like(nll));
    }
}
