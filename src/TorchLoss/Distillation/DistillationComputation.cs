using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TorchLoss;

/// <summary>
/// The libtorch path of <see cref="DistillationLoss"/>, composed of operators (so it runs on every device and dtype
/// and supports double backward), on validated, flattened inputs: student [N, V], detached teacher [N, V], counted [N].
/// </summary>
internal static class DistillationComputation
{
    public static DistillationResult Compute(Tensor student, Tensor teacher, Tensor counted, DistillationOptions options, long? normalizer, long[] perPositionShape)
    {
        using var scope = NewDisposeScope();
        // Half and bfloat16 lose too much in log-sum-exp; compute in float32 and give the gradient back in the input dtype.
        var s = student.dtype is ScalarType.Float16 or ScalarType.BFloat16 ? student.to(ScalarType.Float32) : student;
        var t = teacher.to(s.dtype);
        var logQ = F.log_softmax(Soften(s, options.Temperature), -1);
        var logP = F.log_softmax(Soften(t, options.Temperature), -1);
        var p = logP.exp();

        Tensor divergence = options.Divergence switch
        {
            DistillationDivergence.Forward => RelativeEntropy.Sum(p, logP, logQ),
            DistillationDivergence.Reverse => RelativeEntropy.Sum(logQ.exp(), logQ, logP),
            _ => JensenShannon(p, logP, logQ, options.Beta),
        };
        var perPosition = where(counted, divergence * options.LossFactor, zeros_like(divergence));

        Tensor entropySum, crossEntropySum, klSum, divergenceSum;
        using (no_grad())
        {
            var zero = RelativeEntropy.Zero(logP);
            entropySum = CountedSum(RelativeEntropy.Sum(p, logP, zero).neg(), counted);
            crossEntropySum = CountedSum(RelativeEntropy.Sum(p, zero, logQ), counted);
            klSum = options.Divergence == DistillationDivergence.Forward ? CountedSum(divergence, counted) : CountedSum(RelativeEntropy.Sum(p, logP, logQ), counted);
            divergenceSum = CountedSum(divergence, counted);
        }
        var positionCount = counted.sum(ScalarType.Int64);
        var loss = LossReduction.Reduce(perPosition, options.Reduction, normalizer, () => LossReduction.CountDenominator(positionCount), perPositionShape);
        return new DistillationResult(loss, entropySum, crossEntropySum, klSum, divergenceSum, positionCount).MoveToOuterDisposeScope();
    }

    private static Tensor Soften(Tensor logits, double temperature) => temperature == 1.0 ? logits : logits / temperature;

    /// <summary>β·KL(P‖M) + (1−β)·KL(Q‖M) with M = β·P + (1−β)·Q, log M computed as a log-sum-exp so it stays finite.</summary>
    private static Tensor JensenShannon(Tensor p, Tensor logP, Tensor logQ, double beta)
    {
        // At β = 0 or 1, M is one of the two and the divergence is 0; a zero-weight term is left out instead of
        // multiplied by 0, which would turn an infinite term (a −∞ teacher logit) into NaN.
        if (beta == 0 || beta == 1) return (logQ.exp() * 0).sum(-1);
        var logM = stack([logP + Math.Log(beta), logQ + Math.Log(1 - beta)]).logsumexp(0);
        return beta * RelativeEntropy.Sum(p, logP, logM) + (1 - beta) * RelativeEntropy.Sum(logQ.exp(), logQ, logM);
    }

    private static Tensor CountedSum(Tensor perPosition, Tensor counted) =>
        where(counted, perPosition, zeros_like(perPosition)).to(ScalarType.Float64).sum();
}
