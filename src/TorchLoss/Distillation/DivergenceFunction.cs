using TorchLoss.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss;

/// <summary>Plain-value arguments and per-row totals of one <see cref="DivergenceFunction"/> call.</summary>
internal sealed class DivergenceCall
{
    public DistillationDivergence Divergence { get; init; }

    public double Beta { get; init; }

    public double Temperature { get; init; } = 1;

    /// <summary>
    /// When set, the function returns Σ divergence × this factor (a scalar: every position counted, a reduced loss), so
    /// the reduction adds no autograd node and backward gets one number; null: the divergence of every row [N].
    /// </summary>
    public double? SumScale { get; init; }

    /// <summary>Output: the divergence per row, detached.</summary>
    public Tensor? Rows { get; set; }

    /// <summary>Output: H(P) per row, detached.</summary>
    public Tensor? TeacherEntropy { get; set; }

    /// <summary>Output: H(P, Q) per row, detached.</summary>
    public Tensor? CrossEntropy { get; set; }
}

/// <summary>
/// The divergence per row [N] of student logits [N, V] (differentiable) against teacher logits [N, V] (same dtype, no
/// gradient), on libtorch operators so it runs on every device. Forward computes everything without autograd
/// (<see cref="DivergenceRows"/>) and keeps only the closed-form gradient, one [N, V] tensor, where the composed
/// operators keep both log-softmaxes; backward scales it by the incoming gradient per row, in place.
/// A backward that records a graph (<c>create_graph</c>) builds the gradient from differentiable operators instead
/// (<see cref="DivergenceGradientExpression"/>), so higher derivatives are right; a second backward through a
/// retained graph computes the gradient again.
/// </summary>
internal sealed class DivergenceFunction : autograd.SingleTensorFunction<DivergenceFunction>
{
    public override string Name => nameof(DivergenceFunction);

    /// <summary>The divergence per row (or its scaled sum, see <see cref="DivergenceCall.SumScale"/>); <paramref name="call"/> receives the detached rows of the totals.</summary>
    public static Tensor Apply(Tensor student, Tensor teacher, DivergenceCall call) => apply(student, teacher, call);

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var student = (Tensor)vars[0];
        var teacher = (Tensor)vars[1];
        var call = (DivergenceCall)vars[2];
        var rows = DivergenceRows.Compute(student, teacher, call.Divergence, call.Beta, call.Temperature, gradient: true);
        call.TeacherEntropy = rows.TeacherEntropy;
        call.CrossEntropy = rows.CrossEntropy;
        // The inputs are references, not copies: backward needs them only to build the gradient again.
        ctx.save_for_backward([rows.Gradient!, student, teacher]);
        ctx.save_data("call", call);
        call.Rows = rows.Divergence;
        return call.SumScale is { } scale ? ScaledSum(rows.Divergence, scale) : rows.Divergence;
    }

    /// <summary>Σ <paramref name="rows"/> × <paramref name="scale"/>.</summary>
    public static Tensor ScaledSum(Tensor rows, double scale)
    {
        var sum = rows.sum();
        return scale == 1 ? sum : sum.mul_(scale);
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad_output)
    {
        using var scope = NewDisposeScope();
        var call = (DivergenceCall)ctx.get_data("call");
        var saved = ctx.get_saved_variables();
        var (stored, student, teacher) = (saved[0], saved[1], saved[2]);
        double constant = DivergenceRows.GradientFactor(call.Divergence, call.Beta, call.Temperature) * (call.SumScale ?? 1);
        var factor = grad_output.dtype == stored.dtype ? grad_output : grad_output.to(stored.dtype);
        if (call.SumScale is null) factor = factor.unsqueeze(1);
        if (constant != 1) factor = factor * constant;
        Tensor result;
        if (is_grad_enabled())
        {
            result = DivergenceGradientExpression.Build(student, teacher, call.Divergence, call.Beta, call.Temperature) * factor;
        }
        else
        {
            result = PrecomputedGradient.Take(ctx)
                ? PrecomputedGradient.OwnView(stored)
                : DivergenceRows.Compute(student, teacher, call.Divergence, call.Beta, call.Temperature, gradient: true).Gradient!;
            result.mul_(factor);
        }
        return [result.MoveToOuterDisposeScope(), null!, null!];
    }
}
