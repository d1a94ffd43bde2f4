using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TorchLoss;

/// <summary>
/// The libtorch path of <see cref="DistillationLoss"/>, composed of operators (so it runs on every device and dtype
/// and supports double backward), on validated, flattened inputs: student [N, V], detached teacher [N, V], counted [N].
/// </summary>
/// <remarks>
/// Every total is a row of numbers derived from the same few [N, V] passes as the loss, so the totals add no [N, V]
/// pass of their own beyond the teacher's entropy (see docs/performance.md for how it compares with
/// <c>kl_div(log_softmax(s), log_softmax(t), log_target: true)</c>). With Σ p = 1, the
/// cross-entropy is H(P, Q) = lse(s) − Σ p·s and KL(P‖Q) = H(P, Q) − H(P), H(P) = Σ entr(p); so the forward KL keeps
/// only the teacher's softmax p for its backward (whose gradient is softmax(s) − p), instead of both log-softmaxes.
/// Nothing is read back to the host.
/// </remarks>
internal static class DistillationComputation
{
    public static DistillationResult Compute(Tensor student, Tensor teacher, Tensor? counted, DistillationOptions options, long? normalizer, long[] perPositionShape)
    {
        using var scope = NewDisposeScope();
        // Half and bfloat16 lose too much in log-sum-exp; compute in float32 and give the gradient back in the input dtype.
        var s = Soften(student.dtype is ScalarType.Float16 or ScalarType.BFloat16 ? student.to(ScalarType.Float32) : student, options.Temperature);
        var t = Soften(teacher.to(s.dtype), options.Temperature);

        Tensor p, teacherEntropy;
        using (no_grad())
        {
            p = F.softmax(t, -1);
            // entr(0) = 0: tokens the teacher rules out (−∞) contribute nothing, without a 0·(−∞).
            teacherEntropy = special.entr(p).sum(-1);
        }
        bool forward = options.Divergence == DistillationDivergence.Forward;
        var studentLse = s.logsumexp(-1);
        Tensor crossEntropy;
        // Only the forward KL backpropagates through H(P, Q); the other divergences need it for the totals alone.
        using (forward ? null : no_grad())
            crossEntropy = (forward ? studentLse : studentLse.detach()) - PresentDot(p, s);

        Tensor divergence = options.Divergence switch
        {
            DistillationDivergence.Forward => crossEntropy - teacherEntropy,
            DistillationDivergence.Reverse => ReverseKl(s, t, studentLse),
            _ => JensenShannon(s, t, options.Beta),
        };
        var uncounted = counted?.logical_not();
        var perPosition = Counted(divergence * options.LossFactor, uncounted);

        // The four totals in one masked float64 sum over a [4, N] stack: a handful of operations per call, not sixteen.
        Tensor[] totals;
        using (no_grad())
        {
            var kl = forward ? divergence : crossEntropy - teacherEntropy;
            var rows = stack([teacherEntropy, crossEntropy, kl, divergence]);
            totals = Counted(rows, uncounted).to(ScalarType.Float64).sum(1).unbind(0);
        }
        var positionCount = counted is null
            ? full(Array.Empty<long>(), student.size(0), ScalarType.Int64, student.device)
            : counted.sum(ScalarType.Int64);
        var loss = LossReduction.Reduce(perPosition, options.Reduction, normalizer, () => LossReduction.CountDenominator(positionCount), perPositionShape);
        return new DistillationResult(loss, totals[0], totals[1], totals[2], totals[3], positionCount).MoveToOuterDisposeScope();
    }

    private static Tensor Soften(Tensor logits, double temperature) => temperature == 1.0 ? logits : logits / temperature;

    /// <summary>
    /// Σ_j a_j·x_j per row over the entries where a &gt; 0, so that a logit of −∞ where a is 0 (a vocabulary padded and
    /// masked in both models) adds 0 instead of 0·(−∞) = NaN. <paramref name="a"/> needs no gradient, so autograd keeps
    /// only the mask and <paramref name="a"/>.
    /// </summary>
    private static Tensor PresentDot(Tensor a, Tensor x)
    {
        var product = a * x;
        return where(a.gt(0), product, zeros_like(product)).sum(-1);
    }

    /// <summary>
    /// KL(Q‖P) = Σ q·(s − t) − lse(s) + lse(t) (with Σ q = 1): the softmax q and the difference are all autograd keeps.
    /// Where q is 0 the difference is replaced by 0 before the product, so a token ruled out by both models gives 0 in
    /// the value and the gradient; where only the teacher rules it out the divergence is +∞, as it is mathematically.
    /// </summary>
    private static Tensor ReverseKl(Tensor s, Tensor t, Tensor studentLse)
    {
        var q = F.softmax(s, -1);
        Tensor teacherLse;
        using (no_grad()) teacherLse = t.logsumexp(-1);
        var difference = s - t;
        var safe = where(q.gt(0), difference, zeros_like(difference));
        return (q * safe).sum(-1) - studentLse + teacherLse;
    }

    /// <summary>β·KL(P‖M) + (1−β)·KL(Q‖M) with M = β·P + (1−β)·Q, log M computed as a log-sum-exp so it stays finite.</summary>
    private static Tensor JensenShannon(Tensor s, Tensor t, double beta)
    {
        var logQ = F.log_softmax(s, -1);
        // At β = 0 or 1, M is one of the two and the divergence is 0; a zero-weight term is left out instead of
        // multiplied by 0, which would turn an infinite term (a −∞ teacher logit) into NaN.
        if (beta == 0 || beta == 1) return (logQ.exp() * 0).sum(-1);
        Tensor logP;
        using (no_grad()) logP = F.log_softmax(t, -1);
        // A token both models rule out (−∞) would make log M = −∞ and its gradient −∞ − (−∞) = NaN; the student's −∞
        // becomes the lowest finite value, so log M stays finite there and the token adds 0 to value and gradient.
        var finiteLogQ = logQ.clamp_min(logQ.dtype == ScalarType.Float64 ? double.MinValue : float.MinValue);
        var logM = logaddexp(logP + Math.Log(beta), finiteLogQ + Math.Log(1 - beta));
        return beta * RelativeEntropy.Sum(logP.exp(), logP, logM) + (1 - beta) * RelativeEntropy.Sum(logQ.exp(), logQ, logM);
    }

    /// <summary>The values of counted positions (the last dimension), 0 elsewhere; as they are when every position counts.</summary>
    private static Tensor Counted(Tensor perPosition, Tensor? uncounted) => uncounted is null ? perPosition : perPosition.masked_fill(uncounted, 0);
}
