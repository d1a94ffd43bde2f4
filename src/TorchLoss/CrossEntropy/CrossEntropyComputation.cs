using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TorchLoss;

/// <summary>
/// The computation behind <see cref="TokenCrossEntropy"/> and <see cref="CausalLMLoss"/>, on already
/// validated, flattened inputs: logits [N, C], targets [N] (int64), counted [N] (bool).
/// </summary>
internal static class CrossEntropyComputation
{
    public static LossResult Compute(Tensor logits, Tensor target, Tensor counted, CrossEntropyOptions options, long? normalizer, long[] perTokenShape)
    {
        if (FusedCrossEntropyPath.IsSelected(logits, options.Backend))
            return FusedCrossEntropyPath.Compute(logits, target, counted, options, normalizer, perTokenShape);

        using var scope = NewDisposeScope();
        long classes = logits.shape[1];
        // Half and bfloat16 lose too much in log-sum-exp; compute in float32 and give the gradient back in the input dtype.
        var x = logits.dtype is ScalarType.Float16 or ScalarType.BFloat16 ? logits.to(ScalarType.Float32) : logits;

        double epsilon = UniformEquivalent(options, classes);
        Tensor perToken;
        Tensor nll;
        Tensor? lse = null;
        if (epsilon <= 1.0)
        {
            // libtorch's fused kernel; the mask is folded into the ignore index so it needs nothing else.
            var torchTarget = target.masked_fill(counted.logical_not(), options.IgnoreIndex);
            perToken = F.cross_entropy(x, torchTarget, ignore_index: options.IgnoreIndex, reduction: nn.Reduction.None, label_smoothing: epsilon);
            if (epsilon == 0 && options.ZLossWeight == 0)
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
            // OtherClasses with large ε maps to a Uniform ε' > 1, which libtorch rejects: compose it.
            var logProbs = F.log_softmax(x, 1);
            var safeTarget = target.masked_fill(counted.logical_not(), 0);
            var picked = -logProbs.gather(1, safeTarget.unsqueeze(1)).squeeze(1);
            var all = -logProbs.sum(1);
            perToken = (1 - epsilon) * picked + (epsilon / classes) * all;
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
        Tensor loss = options.Reduction switch
        {
            nn.Reduction.None => perToken.reshape(perTokenShape),
            nn.Reduction.Sum when normalizer is null => perToken.sum(),
            nn.Reduction.Mean when normalizer is null => perToken.sum() / tokenCount.clamp_min(1).to(perToken.dtype),
            _ => perToken.sum() / (double)normalizer!.Value,
        };

        var result = new LossResult(loss, nllSum, tokenCount, zLoss);
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>The ε of PyTorch's (Uniform) convention that gives the same target distribution.</summary>
    public static double UniformEquivalent(CrossEntropyOptions options, long classes) =>
        options.Smoothing == SmoothingKind.OtherClasses && options.LabelSmoothing > 0
            ? options.LabelSmoothing * classes / (classes - 1)
            : options.LabelSmoothing;

    private static Tensor UnsmoothedNll(Tensor x, Tensor target, Tensor counted, Tensor? lse)
    {
        using var _ = no_grad();
        var safeTarget = target.masked_fill(counted.logical_not(), 0);
        var nll = (lse ?? x.logsumexp(1)) - x.gather(1, safeTarget.unsqueeze(1)).squeeze(1);
        return where(counted, nll, zeros_like(nll));
    }
}
