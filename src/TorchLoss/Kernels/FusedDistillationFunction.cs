using System.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss.Kernels;

/// <summary>Plain-value arguments and results of one <see cref="FusedDistillationFunction"/> call.</summary>
internal sealed class FusedDistillationCall
{
    /// <summary>Temperature τ &gt; 0 dividing both logits.</summary>
    public double Temperature { get; init; } = 1;

    /// <summary>Factor on every row's KL (τ² or 1).</summary>
    public double LossFactor { get; init; } = 1;

    /// <summary>Factor on the summed loss and on every gradient value (1/count for a mean, 1/normalizer, or 1).</summary>
    public double Scale { get; init; } = 1;

    /// <summary>True: the result is the loss of every row [N]; false: the scaled sum (a scalar).</summary>
    public bool PerRow { get; init; }

    /// <summary>Whether to write the gradient (false under no_grad or when the student needs none).</summary>
    public bool NeedGradient { get; init; }

    /// <summary>Output: Σ H(P) over counted rows.</summary>
    public double EntropySum { get; set; }

    /// <summary>Output: Σ H(P, Q) over counted rows.</summary>
    public double CrossEntropySum { get; set; }

    /// <summary>Output: Σ KL(P‖Q) over counted rows.</summary>
    public double KlSum { get; set; }
}

/// <summary>
/// Forward-KL distillation whose forward writes the student's gradient (see <see cref="FusedDistillationKernel"/>) and
/// whose backward only scales it by the incoming gradient: no log-softmax is materialised. Arguments: student [N, V]
/// and teacher [N, V] (contiguous, CPU, the same float32 or float64 dtype), counted [N] bool, a <see cref="FusedDistillationCall"/>.
/// The teacher gets no gradient.
/// </summary>
internal sealed class FusedDistillationFunction : autograd.SingleTensorFunction<FusedDistillationFunction>
{
    public override string Name => nameof(FusedDistillationFunction);

    /// <summary>Runs the loss; returns a scalar, or [N] when <see cref="FusedDistillationCall.PerRow"/>.</summary>
    public static Tensor Apply(Tensor student, Tensor teacher, Tensor counted, FusedDistillationCall call) => apply(student, teacher, counted, call);

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var student = (Tensor)vars[0];
        var teacher = (Tensor)vars[1];
        var counted = (Tensor)vars[2];
        var call = (FusedDistillationCall)vars[3];
        long rows = student.shape[0];

        Tensor? gradient = call.NeedGradient ? empty_like(student) : null;
        var rowKl = new double[rows];
        var rowEntropy = new double[rows];
        var rowCrossEntropy = new double[rows];
        // d(factor·KL)/ds = factor·(q − p)/τ; the per-row factor of Reduction.None is only known in backward.
        double gradientScale = (call.PerRow ? 1 : call.Scale) * call.LossFactor / call.Temperature;
        if (student.dtype == ScalarType.Float64)
            RunKernel<double>(student, teacher, counted, gradient, rowKl, rowEntropy, rowCrossEntropy, call.Temperature, gradientScale);
        else
            RunKernel<float>(student, teacher, counted, gradient, rowKl, rowEntropy, rowCrossEntropy, call.Temperature, gradientScale);

        call.KlSum = FusedCrossEntropyFunction.SumInOrder(rowKl);
        call.EntropySum = FusedCrossEntropyFunction.SumInOrder(rowEntropy);
        call.CrossEntropySum = FusedCrossEntropyFunction.SumInOrder(rowCrossEntropy);
        if (gradient is not null) ctx.save_for_backward([gradient]);
        if (call.PerRow)
            return tensor(rowKl, ScalarType.Float64).mul_(call.LossFactor).to(student.dtype);
        return tensor(call.KlSum * call.LossFactor * call.Scale, student.dtype);
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad_output) =>
        [PrecomputedGradient.Scaled(ctx, grad_output, "distillation"), null!, null!, null!];

    private static unsafe void RunKernel<T>(
        Tensor student, Tensor teacher, Tensor counted, Tensor? gradient, double[] rowKl, double[] rowEntropy, double[] rowCrossEntropy,
        double temperature, double gradientScale) where T : unmanaged, IFloatingPointIeee754<T>
    {
        fixed (double* kl = rowKl, entropy = rowEntropy, crossEntropy = rowCrossEntropy)
        {
            FusedDistillationKernel.Run(
                TensorMemory.Pointer<T>(student), TensorMemory.Pointer<T>(teacher), TensorMemory.Pointer<bool>(counted),
                gradient is null ? null : TensorMemory.Pointer<T>(gradient),
                kl, entropy, crossEntropy, student.shape[0], student.shape[1], temperature, gradientScale);
        }
    }
}
