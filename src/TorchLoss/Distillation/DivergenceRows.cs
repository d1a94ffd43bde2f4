using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TorchLoss;

/// <summary>
/// Per-row values of one distillation evaluation on the libtorch path, computed without autograd from the softened
/// logits: the trained divergence, the teacher's entropy H(P), the cross-entropy H(P, Q) (KL(P‖Q) = H(P, Q) − H(P)),
/// and, when asked for, the divergence's gradient with respect to the softened student logits, up to the constant
/// <see cref="DivergenceRows.GradientFactor"/>.
/// </summary>
internal readonly record struct DivergenceRows(Tensor Divergence, Tensor TeacherEntropy, Tensor CrossEntropy, Tensor? Gradient)
{
    /// <summary>
    /// Computes the rows of student and teacher logits [N, V] (same dtype) softened by <paramref name="temperature"/>.
    /// Each [N, V] temporary is freed as soon as it is used and the gradient is written into one of them, so the
    /// peak is two to five [N, V] tensors and one is kept (see docs/performance.md).
    /// </summary>
    /// <remarks>
    /// Log-probabilities of −∞ (a token a model rules out) are clamped to the lowest finite value before any product,
    /// so 0·log 0 gives 0 instead of 0·(−∞) = NaN, without a mask or a <c>where</c> over [N, V]; NaN still propagates.
    /// The closed-form gradients, with q = softmax(s), p = softmax(t):
    /// forward KL q − p; reverse KL q ⊙ (log q − log p − KL(Q‖P)), stored negated; Jensen–Shannon
    /// (1 − β)·q ⊙ (log q − log m − KL(Q‖M)); the sign, (1 − β) and 1/τ are left to <see cref="GradientFactor"/>.
    /// </remarks>
    public static DivergenceRows Compute(Tensor student, Tensor teacher, DistillationDivergence divergence, double beta, double temperature, bool gradient)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var rows = divergence switch
        {
            DistillationDivergence.Forward => ForwardKl(student, teacher, temperature, gradient),
            DistillationDivergence.Reverse => ReverseKl(student, teacher, temperature, gradient),
            _ => JensenShannon(student, teacher, beta, temperature, gradient),
        };
        rows.Divergence.MoveToOuterDisposeScope();
        rows.TeacherEntropy.MoveToOuterDisposeScope();
        rows.CrossEntropy.MoveToOuterDisposeScope();
        rows.Gradient?.MoveToOuterDisposeScope();
        return rows;
    }

    /// <summary>The constant by which <see cref="Gradient"/> times the incoming gradient is the gradient of the unsoftened student logits.</summary>
    public static double GradientFactor(DistillationDivergence divergence, double beta, double temperature) => divergence switch
    {
        DistillationDivergence.Reverse => -1 / temperature,
        DistillationDivergence.JensenShannon => (1 - beta) / temperature,
        _ => 1 / temperature,
    };

    private static DivergenceRows ForwardKl(Tensor student, Tensor teacher, double temperature, bool gradient)
    {
        var p = Softmax(teacher, temperature);
        var entropy = EntropyOf(p);
        var logQ = FiniteLogSoftmax(student, temperature);
        var crossEntropy = Dot(p, logQ).neg_();
        var kl = crossEntropy - entropy;
        Tensor? g = null;
        if (gradient) g = logQ.exp_().sub_(p);
        else logQ.Dispose();
        p.Dispose();
        return new(kl, entropy, crossEntropy, g);
    }

    private static DivergenceRows ReverseKl(Tensor student, Tensor teacher, double temperature, bool gradient)
    {
        // log p stays −∞ where the teacher rules a token out: there the reverse KL is +∞ whenever q > 0, as it is.
        var logP = LogSoftmax(teacher, temperature);
        var p = logP.exp();
        var entropy = EntropyOf(p);
        var logQ = FiniteLogSoftmax(student, temperature);
        var crossEntropy = Dot(p, logQ).neg_();
        p.Dispose();
        // Negated terms q·(log p − log q), so no pass is spent on a sign: GradientFactor carries it.
        var negated = logP.sub_(logQ);
        var q = logQ.exp_();
        negated.mul_(q);
        // q = 0 (the student rules the token out) contributes 0, also where log p = −∞ made the difference −∞.
        using (var absent = q.eq(0)) negated.masked_fill_(absent, 0);
        var divergence = negated.sum(-1).neg_();
        Tensor? g = null;
        if (gradient) g = negated.addcmul_(q, divergence.unsqueeze(1), 1);   // −q ⊙ (log q − log p − KL)
        else negated.Dispose();
        q.Dispose();
        return new(divergence, entropy, crossEntropy, g);
    }

    private static DivergenceRows JensenShannon(Tensor student, Tensor teacher, double beta, double temperature, bool gradient)
    {
        var logP = FiniteLogSoftmax(teacher, temperature);
        var p = logP.exp();
        var entropy = Dot(p, logP).neg_();
        var logQ = FiniteLogSoftmax(student, temperature);
        var crossEntropy = Dot(p, logQ).neg_();
        if (beta == 0 || beta == 1)
        {
            // M is one of the two distributions: the divergence and its gradient are 0.
            logP.Dispose();
            p.Dispose();
            logQ.Dispose();
            return new(zeros_like(entropy), entropy, crossEntropy, gradient ? zeros_like(student) : null);
        }
        // log m = logaddexp(log p + log β, log q + log(1 − β)): finite, as both logs are.
        Tensor logM;
        using (var studentPart = logQ + Math.Log(1 - beta)) logM = logaddexp(logP.add_(Math.Log(beta)), studentPart);
        logP.Dispose();
        var teacherPart = entropy.neg().sub_(Dot(p, logM)); // KL(P‖M) = −H(P) − Σ p·log m
        p.Dispose();
        var weighted = logM.neg_().add_(logQ);                  // log q − log m
        var q = logQ.exp_();
        weighted.mul_(q);
        var studentKl = weighted.sum(-1);                       // KL(Q‖M)
        var divergence = teacherPart.mul_(beta).add_(studentKl, 1 - beta);
        Tensor? g = null;
        if (gradient) g = weighted.addcmul_(q, studentKl.unsqueeze(1), -1);
        else weighted.Dispose();
        q.Dispose();
        return new(divergence, entropy, crossEntropy, g);
    }

    private static Tensor Softmax(Tensor logits, double temperature)
    {
        if (temperature == 1.0) return F.softmax(logits, -1);
        using var softened = logits / temperature;
        return F.softmax(softened, -1);
    }

    private static Tensor LogSoftmax(Tensor logits, double temperature)
    {
        if (temperature == 1.0) return F.log_softmax(logits, -1);
        using var softened = logits / temperature;
        return F.log_softmax(softened, -1);
    }

    /// <summary>log_softmax with −∞ replaced by the dtype's lowest finite value, in place.</summary>
    private static Tensor FiniteLogSoftmax(Tensor logits, double temperature) =>
        LogSoftmax(logits, temperature).clamp_min_(logits.dtype == ScalarType.Float64 ? double.MinValue : float.MinValue);

    /// <summary>H(P) = Σ entr(p) per row; entr(0) = 0, so ruled-out tokens add nothing.</summary>
    private static Tensor EntropyOf(Tensor p)
    {
        using var terms = special.entr(p);
        return terms.sum(-1);
    }

    /// <summary>Σ_j a_j·b_j per row (both finite where a is 0, so no 0·∞).</summary>
    private static Tensor Dot(Tensor a, Tensor b)
    {
        using var product = a * b;
        return product.sum(-1);
    }
}
