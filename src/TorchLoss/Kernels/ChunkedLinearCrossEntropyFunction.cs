using TorchSharp;
using static TorchSharp.torch;
using Wanted = TorchLoss.Kernels.HeadWanted;

namespace TorchLoss.Kernels;

/// <summary>
/// Cross-entropy of <c>hidden·weightᵀ (+ bias)</c> without the [N, V] logits: rows go through in chunks, each
/// chunk's logits become its softmax in place (<see cref="FusedCrossEntropyKernel"/>) and are folded into the
/// gradients of hidden, weight and bias (<see cref="HeadGradientAccumulator"/>: smoothing and target terms in closed
/// form, columns of negligible softmax skipped) before the next chunk reuses the buffer.
/// Arguments: hidden [N, d] (contiguous), weight [V, d], bias [V] or null, targets [N] int64, counted [N] bool,
/// a <see cref="FusedCrossEntropyCall"/>, the chunk size (rows, boxed int64), the gradient filter (boxed double).
/// All on the CPU, float32 or float64.
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

    /// <summary>
    /// Runs the loss; returns a scalar, or [N] when <see cref="FusedCrossEntropyCall.PerRow"/>. The gradient filter τ ≥ 0
    /// (last argument): softmax values below τ/V in every row of a chunk skip their column of the backward matmuls; 0 skips nothing.
    /// </summary>
    public static Tensor Apply(Tensor hidden, Tensor weight, Tensor? bias, Tensor targets, Tensor counted, FusedCrossEntropyCall call, long chunkRows, double filter) =>
        apply(hidden, weight, bias!, targets, counted, call, chunkRows, filter);

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var hidden = (Tensor)vars[0];
        var weight = (Tensor)vars[1];
        var bias = vars[2] as Tensor;
        var targets = (Tensor)vars[3];
        var counted = (Tensor)vars[4];
        var call = (FusedCrossEntropyCall)vars[5];
        long chunkRows = (long)vars[6];
        double filter = (double)vars[7];
        ctx.save_data("chunkRows", chunkRows);
        ctx.save_data("filter", filter);
        ctx.save_data("call", call);

        long rows = hidden.shape[0];
        var rowLoss = new double[rows];
        var rowNll = new double[rows];
        var rowZLoss = new double[rows];
        var wanted = call.NeedGradient && !call.PerRow
            ? new Wanted(hidden.requires_grad, weight.requires_grad, bias is not null && bias.requires_grad)
            : Wanted.None;
        var (gradHidden, gradWeight, gradBias) = Sweep(hidden, weight, bias, targets, counted, call, chunkRows, filter, wanted, call.Scale, null, rowLoss, rowNll, rowZLoss);

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
        return [Outer(gradHidden), Outer(gradWeight), Outer(gradBias), null!, null!, null!, null!, null!];

        // The losses were computed in forward; this sweep is for the gradients.
        (Tensor?, Tensor?, Tensor?) SweepAgain(double gradientScale, Tensor? rowScale)
        {
            long rows = hidden.shape[0];
            return Sweep(hidden, weight, bias, targets, counted, call, (long)ctx.get_data("chunkRows"), (double)ctx.get_data("filter"), wanted, gradientScale, rowScale,
                new double[rows], new double[rows], new double[rows]);
        }
    }

    private static Tensor? OwnView(Tensor? stored) => stored is null ? null : PrecomputedGradient.OwnView(stored);

    /// <summary>The gradients of a backward that records a graph (<c>create_graph</c>); see <see cref="ChunkedHeadSweep.DifferentiableGradients"/>.</summary>
    private static (Tensor? Hidden, Tensor? Weight, Tensor? Bias) DifferentiableGradients(
        Tensor hidden, Tensor weight, Tensor? bias, Tensor targets, Tensor counted, FusedCrossEntropyCall call, Wanted wanted, Tensor factor) =>
        ChunkedHeadSweep.DifferentiableGradients(hidden, weight, bias, targets, counted, call, wanted, call.PerRow ? factor.unsqueeze(1) : factor * call.Scale);

    private static Tensor Outer(Tensor? gradient) => gradient?.MoveToOuterDisposeScope()!;

    /// <summary>
    /// One pass over the row chunks (<see cref="ChunkedHeadSweep.Sweep"/>) with the cross-entropy's row factors:
    /// losses into the row spans and, where wanted, the three gradients.
    /// </summary>
    private static (Tensor? Hidden, Tensor? Weight, Tensor? Bias) Sweep(
        Tensor hidden, Tensor weight, Tensor? bias, Tensor targets, Tensor counted, FusedCrossEntropyCall call, long chunkRows, double filter,
        Wanted wanted, double gradientScale, Tensor? rowScale, double[] rowLoss, double[] rowNll, double[] rowZLoss)
    {
        long rows = hidden.shape[0];
        long classes = weight.shape[0];
        var chunks = ChunkedHeadSweep.RowChunks(rows, chunkRows);
        if (!wanted.Any)
            return ChunkedHeadSweep.Sweep(hidden, weight, bias, targets, counted, call, chunks, chunkRows, filter, wanted, null, rowLoss, rowNll, rowZLoss);

        var target = targets.data<long>().ToArray();
        var isCounted = counted.data<bool>().ToArray();
        var scales = rowScale?.to(ScalarType.Float64).data<double>().ToArray();
        var classWeights = call.ClassWeights;
        double weightTotal = classWeights?.Sum() ?? classes;
        double epsilonPerClass = call.Epsilon / classes;
        var result = ChunkedHeadSweep.Sweep(hidden, weight, bias, targets, counted, call, chunks, chunkRows, filter, wanted, Factors, rowLoss, rowNll, rowZLoss);
        LastActiveFraction = ChunkedHeadSweep.LastActiveFraction;
        return result;

        void Factors(HeadSegment[] chunk, double[] rowLse, Span<double> f, Span<double> s, Span<double> a)
        {
            long from = chunk[0].Start;
            for (int i = 0; i < chunk[0].Length; i++)
            {
                long row = from + i;
                if (!isCounted[row]) continue;
                double r = gradientScale * (scales?[row] ?? 1.0);
                double targetWeight = classWeights?[target[row]] ?? 1.0;
                f[i] = r * ((1 - call.Epsilon) * targetWeight + epsilonPerClass * weightTotal + 2 * call.ZLossWeight * rowLse[row]);
                s[i] = r * epsilonPerClass;
                a[i] = r * (1 - call.Epsilon) * targetWeight;
            }
        }
    }

    /// <summary>The fraction of (chunk, column) pairs the last gradient sweep on this thread kept: 1 without filtering.</summary>
    [ThreadStatic]
    internal static double LastActiveFraction;
}
