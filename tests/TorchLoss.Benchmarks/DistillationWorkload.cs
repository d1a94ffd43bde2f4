using TorchLoss;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TorchLoss.Benchmarks;

/// <summary>
/// Forward + backward of distillation over leaf student logits [N, V] against fixed teacher logits [N, V]: composed
/// from torch's operators (two <c>log_softmax</c> and <c>kl_div</c>, as a user would write the divergence) and by
/// <see cref="DistillationLoss"/>.
/// </summary>
public sealed class DistillationWorkload : IDisposable
{
    private readonly Tensor _student;
    private readonly Tensor _teacher;
    private readonly DistillationLoss _fused;
    private readonly DistillationLoss _libTorch;
    private readonly DistillationDivergence _divergence;

    /// <summary>Allocates the inputs (seeded) and the modules (the fused one only for the forward KL, the only divergence it computes).</summary>
    public DistillationWorkload(long rows, long classes, DistillationDivergence divergence = DistillationDivergence.Forward)
    {
        _divergence = divergence;
        var gen = new Generator(42);
        // Scaled in place, so set-up does not leave a second [N, V] tensor in the peak-memory figure.
        _student = randn([rows, classes], generator: gen).mul_(2).requires_grad_(true);
        _teacher = randn([rows, classes], generator: gen).mul_(3);
        _fused = new DistillationLoss(new DistillationOptions { Backend = DistillationBackend.Fused });
        _libTorch = new DistillationLoss(new DistillationOptions { Backend = DistillationBackend.LibTorch, Divergence = divergence });
    }

    /// <summary>
    /// torch's operators, summed over rows / N, then backward: forward KL(P‖Q) <c>kl_div(log_softmax(s), log_softmax(t), log_target)</c>,
    /// reverse KL(Q‖P) the same with the arguments exchanged, Jensen–Shannon (β = ½) through log M = log(½(P + Q)).
    /// </summary>
    public void Composed()
    {
        using var scope = NewDisposeScope();
        _student.grad = null;
        var logQ = F.log_softmax(_student, -1);
        var logP = F.log_softmax(_teacher, -1);
        var loss = _divergence switch
        {
            DistillationDivergence.Forward => KlSum(logQ, logP),
            DistillationDivergence.Reverse => KlSum(logP, logQ),
            _ => JensenShannonSum(logP, logQ),
        };
        (loss / _student.shape[0]).backward();
    }

    // kl_div(input, target) = Σ exp(target)·(target − input) = KL(target‖input).
    private static Tensor KlSum(Tensor logInput, Tensor logTarget) => F.kl_div(logInput, logTarget, reduction: nn.Reduction.Sum, log_target: true);

    private static Tensor JensenShannonSum(Tensor logP, Tensor logQ)
    {
        var logM = (0.5 * (logP.exp() + logQ.exp())).log();
        return 0.5 * (KlSum(logM, logP) + KlSum(logM, logQ));
    }

    /// <summary>TorchLoss forced onto the fused kernel (what Auto picks here), then backward.</summary>
    public void TorchLossFused() => ForwardBackward(_fused);

    /// <summary>TorchLoss forced onto its composed libtorch path (which also computes the totals), then backward.</summary>
    public void TorchLossLibTorch() => ForwardBackward(_libTorch);

    private void ForwardBackward(DistillationLoss loss)
    {
        using var scope = NewDisposeScope();
        _student.grad = null;
        loss.forward(_student, _teacher).backward();
    }

    /// <summary>Frees the tensors and modules.</summary>
    public void Dispose()
    {
        _student.grad = null;
        _student.Dispose();
        _teacher.Dispose();
        _fused.Dispose();
        _libTorch.Dispose();
    }
}
