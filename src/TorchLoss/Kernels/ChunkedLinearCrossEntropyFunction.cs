using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss.Kernels;

/// <summary>
/// Cross-entropy of <c>hidden·weightᵀ (+ bias)</c> without the [N, V] logits: rows go through in chunks, each
/// chunk's logits become its gradient in place (<see cref="FusedCrossEntropyKernel"/>) and are folded into the
/// gradients of hidden, weight and bias before the next chunk reuses the buffer.
/// Arguments: hidden [N, d] (contiguous), weight [V, d], bias [V] or null, targets [N] int64, counted [N] bool,
/// a <see cref="FusedCrossEntropyCall"/>, the chunk size (rows, boxed int64). All on the CPU, float32 or float64.
/// </summary>
/// <remarks>
/// With a reduced loss the gradients are complete after the forward pass and backward only scales them (a second
/// backward through a retained graph sweeps the chunks again).
/// A per-token loss (<see cref="FusedCrossEntropyCall.PerRow"/>) needs each row's incoming gradient, so its
/// forward computes losses only and backward sweeps the chunks again with those row factors.
/// A backward that records a graph (<c>create_graph</c>) rebuilds the gradients from libtorch operators on the
/// full logits instead, so higher derivatives are right (at the plain head's memory cost).
/// </remarks>
internal sealed class ChunkedLinearCrossEntropyFunction : autograd.SingleTensorFunction<ChunkedLinearCrossEntropyFunction>
{
    public override string Name => nameof(ChunkedLinearCrossEntropyFunction);

    /// <summary>Runs the loss; returns a scalar, or [N] when <see cref="FusedCrossEntropyCall.PerRow"/>.</summary>
    public static Tensor Apply(Tensor hidden, Tensor weight, Tensor? bias, Tensor targets, Tensor counted, FusedCrossEntropyCall call, long chunkRows) =>
        apply(hidden, weight, bias!, targets, counted, call, chunkRows);

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var hidden = (Tensor)vars[0];
        var weight = (Tensor)vars[1];
        var bias = vars[2] as Tensor;
        var targets = (Tensor)vars[3];
        var counted = (Tensor)vars[4];
        var call = (FusedCrossEntropyCall)vars[5];
        long chunkRows = (long)vars[6];
        ctx.save_data("chunkRows", chunkRows);
        ctx.save_data("call", call);

        long rows = hidden.shape[0];
        var rowLoss = new double[rows];
        var rowNll = new double[rows];
        var rowZLoss = new double[rows];
        var wanted = call.NeedGradient && !call.PerRow
            ? new Wanted(hidden.requires_grad, weight.requires_grad, bias is not null && bias.requires_grad)
            : Wanted.None;
        var (gradHidden, gradWeight, gradBias) = Sweep(hidden, weight, bias, targets, counted, call, chunkRows, wanted, call.Scale, null, rowLoss, rowNll, rowZLoss);

        call.NllSum = FusedCrossEntropyFunction.SumInOrder(rowNll);
        call.ZLossSum = FusedCrossEntropyFunction.SumInOrder(rowZLoss);
        if (call.NeedGradient)
        {
            // The inputs (references, not copies) to sweep again per row or to rebuild a differentiable gradient,
            // and the finished gradients of a reduced loss.
            ctx.save_for_backward([hidden, weight, bias!, targets, counted, gradHidden!, gradWeight!, gradBias!]);
        }
        if (call.PerRow)
            return tensor(rowLoss, ScalarType.Float64).to(hidden.dtype);
        return tensor(FusedCrossEntropyFunction.SumInOrder(rowLoss) * call.Scale, hidden.dtype);
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad_output)
    {
        using var scope = NewDisposeScope();
        var saved = ctx.get_saved_variables();
        var (hidden, weight, bias, targets, counted) = (saved[0], saved[1], saved[2], saved[3], saved[4]);
        var call = (FusedCrossEntropyCall)ctx.get_data("call");
        var wanted = new Wanted(hidden.requires_grad, weight.requires_grad, bias is not null && bias.requires_grad);
        var factor = grad_output.to(hidden.dtype);
        Tensor? gradHidden, gradWeight, gradBias;
        if (is_grad_enabled())
        {
            (gradHidden, gradWeight, gradBias) = DifferentiableGradients(hidden, weight, bias, targets, counted, call, wanted, factor);
        }
        else if (call.PerRow)
        {
            (gradHidden, gradWeight, gradBias) = SweepAgain(1.0, factor.contiguous());
        }
        else
        {
            if (PrecomputedGradient.Take(ctx))
            {
                (gradHidden, gradWeight, gradBias) = (OwnView(saved[5]), OwnView(saved[6]), OwnView(saved[7]));
            }
            else
            {
                (gradHidden, gradWeight, gradBias) = SweepAgain(call.Scale, null);
            }
            // loss.backward() passes 1 and leaves the gradients as they are.
            if (factor.ToDouble() != 1.0)
            {
                foreach (var g in new[] { gradHidden, gradWeight, gradBias }) g?.mul_(factor);
            }
        }
        return [Outer(gradHidden), Outer(gradWeight), Outer(gradBias), null!, null!, null!, null!];

        // The losses were computed in forward; this sweep is for the gradients.
        (Tensor?, Tensor?, Tensor?) SweepAgain(double gradientScale, Tensor? rowScale)
        {
            long rows = hidden.shape[0];
            return Sweep(hidden, weight, bias, targets, counted, call, (long)ctx.get_data("chunkRows"), wanted, gradientScale, rowScale,
                new double[rows], new double[rows], new double[rows]);
        }
    }

    private static Tensor? OwnView(Tensor? stored) => stored is null ? null : PrecomputedGradient.OwnView(stored);

    /// <summary>
    /// The gradients as libtorch expressions of the inputs, for a backward that records a graph (<c>create_graph</c>):
    /// this materialises the [N, V] logits, as the plain head would, but gives right higher derivatives.
    /// </summary>
    private static (Tensor? Hidden, Tensor? Weight, Tensor? Bias) DifferentiableGradients(
        Tensor hidden, Tensor weight, Tensor? bias, Tensor targets, Tensor counted, FusedCrossEntropyCall call, Wanted wanted, Tensor factor)
    {
        var logits = nn.functional.linear(hidden, weight, bias);
        var gradLogits = CrossEntropyGradientExpression.Build(
            logits, targets, counted, call.Epsilon, call.ZLossWeight, call.PerRow ? factor.unsqueeze(1) : factor * call.Scale, call.ClassWeights);
        return (
            wanted.Hidden ? gradLogits.mm(weight) : null,
            wanted.Weight ? gradLogits.t().mm(hidden) : null,
            wanted.Bias ? gradLogits.sum(dim: 0) : null);
    }

    private static Tensor Outer(Tensor? gradient) => gradient?.MoveToOuterDisposeScope()!;

    private readonly record struct Wanted(bool Hidden, bool Weight, bool Bias)
    {
        public static Wanted None => default;

        public bool Any => Hidden || Weight || Bias;
    }

    /// <summary>One pass over the row chunks: losses into the row spans and, where wanted, the three gradients.</summary>
    private static (Tensor? Hidden, Tensor? Weight, Tensor? Bias) Sweep(
        Tensor hidden, Tensor weight, Tensor? bias, Tensor targets, Tensor counted, FusedCrossEntropyCall call, long chunkRows,
        Wanted wanted, double gradientScale, Tensor? rowScale, double[] rowLoss, double[] rowNll, double[] rowZLoss)
    {
        long rows = hidden.shape[0];
        long classes = weight.shape[0];
        var gradHidden = wanted.Hidden ? empty_like(hidden) : null;
        var gradWeight = wanted.Weight ? zeros_like(weight) : null;
        var gradBias = wanted.Bias ? zeros_like(bias!) : null;
        var weightT = weight.t();
        using var buffer = empty([Math.Min(chunkRows, rows), classes], hidden.dtype, hidden.device);
        for (long start = 0; start < rows; start += chunkRows)
        {
            long length = Math.Min(chunkRows, rows - start);
            using var scope = NewDisposeScope();
            var h = hidden.narrow(0, start, length);
            var logits = buffer.narrow(0, 0, length);
            logits.addmm_(h, weightT, beta: 0, alpha: 1);
            if (bias is not null) logits.add_(bias);
            int from = (int)start, count = (int)length;
            FusedCrossEntropyFunction.RunKernel(
                logits, targets.narrow(0, start, length), counted.narrow(0, start, length), wanted.Any ? logits : null,
                rowLoss.AsSpan(from, count), rowNll.AsSpan(from, count), rowZLoss.AsSpan(from, count),
                call, gradientScale, rowScale?.narrow(0, start, length));
            if (!wanted.Any) continue;
            // logits now holds ∂loss/∂logits of the chunk.
            gradHidden?.narrow(0, start, length).addmm_(logits, weight, beta: 0, alpha: 1);
            gradWeight?.addmm_(logits.t(), h);
            gradBias?.add_(logits.sum(dim: 0)); // a bare 0 would bind to sum(ScalarType)
        }
        return (gradHidden, gradWeight, gradBias);
    }
}
