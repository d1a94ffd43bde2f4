using System.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss.Kernels;

/// <summary>
/// Plain-value arguments and results of one <see cref="FusedCrossEntropyFunction"/> call.
/// </summary>
internal sealed class FusedCrossEntropyCall
{
    /// <summary>Uniform-convention smoothing ε ≥ 0.</summary>
    public double Epsilon { get; init; }

    /// <summary>z-loss weight ≥ 0.</summary>
    public double ZLossWeight { get; init; }

    /// <summary>Optional weight ≥ 0 of each class (torch's <c>weight</c>); null weighs every class 1.</summary>
    public double[]? ClassWeights { get; init; }

    private Array? typedClassWeights;

    /// <summary><see cref="ClassWeights"/> in the kernel's element type, converted once per call (the chunked head runs the kernel per chunk).</summary>
    public T[]? ClassWeightsAs<T>() where T : INumberBase<T>
    {
        if (ClassWeights is null) return null;
        if (typedClassWeights is not T[] typed)
        {
            typed = ClassWeights.Select(T.CreateTruncating).ToArray();
            typedClassWeights = typed;
        }
        return typed;
    }

    /// <summary>Factor on the summed loss and on every gradient value (1/token count for a mean, 1/normalizer, or 1).</summary>
    public double Scale { get; init; } = 1;

    /// <summary>True: the result is the loss of every row [N]; false: the scaled sum (a scalar).</summary>
    public bool PerRow { get; init; }

    /// <summary>Whether to write the gradient (false under no_grad or when the logits need none).</summary>
    public bool NeedGradient { get; init; }

    /// <summary>
    /// Write the gradient over the logits themselves (the caller has checked that this is safe): no [N, K] allocation,
    /// but backward can then hand the gradient over only once and cannot rebuild it.
    /// </summary>
    public bool GradientInPlace { get; init; }

    /// <summary>Output: Σ unsmoothed NLL over counted rows.</summary>
    public double NllSum { get; set; }

    /// <summary>Output: Σ weighted z-loss over counted rows.</summary>
    public double ZLossSum { get; set; }
}

/// <summary>
/// Cross-entropy whose forward writes the gradient (see <see cref="FusedCrossEntropyKernel"/>) and whose backward
/// only scales it by the incoming gradient: the log-softmax is never materialised. A backward that records a graph
/// (<c>create_graph</c>) recomputes the gradient with <see cref="CrossEntropyGradientExpression"/> instead, so
/// higher derivatives are right; a second backward through a retained graph runs the kernel again.
/// Arguments: logits [N, K] (contiguous, CPU, float32 or float64), targets [N] int64, counted [N] bool, a <see cref="FusedCrossEntropyCall"/>.
/// </summary>
internal sealed class FusedCrossEntropyFunction : autograd.SingleTensorFunction<FusedCrossEntropyFunction>
{
    public override string Name => nameof(FusedCrossEntropyFunction);

    /// <summary>Runs the loss; returns a scalar, or [N] when <see cref="FusedCrossEntropyCall.PerRow"/>.</summary>
    public static Tensor Apply(Tensor logits, Tensor targets, Tensor counted, FusedCrossEntropyCall call) => apply(logits, targets, counted, call);

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var logits = (Tensor)vars[0];
        var targets = (Tensor)vars[1];
        var counted = (Tensor)vars[2];
        var call = (FusedCrossEntropyCall)vars[3];
        long rows = logits.shape[0];

        Tensor? gradient = !call.NeedGradient ? null : call.GradientInPlace ? logits : empty_like(logits);
        var rowLoss = new double[rows];
        var rowNll = new double[rows];
        var rowZLoss = new double[rows];
        // The per-row factor of Reduction.None is only known in backward, so the stored gradient is unscaled there.
        double gradientScale = call.PerRow ? 1 : call.Scale;
        RunKernel(logits, targets, counted, gradient, rowLoss, rowNll, rowZLoss, call, gradientScale);

        call.NllSum = SumInOrder(rowNll);
        call.ZLossSum = SumInOrder(rowZLoss);
        if (gradient is not null && call.GradientInPlace)
        {
            // Every node that saved the logits before now fails autograd's version check instead of reading the gradient.
            AutogradState.MarkModified(logits);
            ctx.save_for_backward([gradient]);
            ctx.save_data("call", call);
        }
        else if (gradient is not null)
        {
            // The inputs are references, not copies: backward needs them only when it must build a differentiable gradient.
            ctx.save_for_backward([gradient, logits, targets, counted]);
            ctx.save_data("call", call);
        }
        if (call.PerRow)
            return tensor(rowLoss, ScalarType.Float64).to(logits.dtype);
        return tensor(SumInOrder(rowLoss) * call.Scale, logits.dtype);
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad_output)
    {
        using var scope = NewDisposeScope();
        var call = (FusedCrossEntropyCall)ctx.get_data("call");
        if (call.GradientInPlace) return [InPlaceBackward(ctx, grad_output).MoveToOuterDisposeScope(), null!, null!, null!];
        var saved = ctx.get_saved_variables();
        var (stored, logits, targets, counted) = (saved[0], saved[1], saved[2], saved[3]);
        var factor = grad_output.to(logits.dtype);
        if (call.PerRow) factor = factor.unsqueeze(1);
        Tensor result;
        if (is_grad_enabled())
        {
            // create_graph: the stored gradient has no graph, so recompute it differentiably.
            result = CrossEntropyGradientExpression.Build(logits, targets, counted, call.Epsilon, call.ZLossWeight, call.PerRow ? factor : factor * call.Scale, call.ClassWeights);
        }
        else
        {
            if (PrecomputedGradient.Take(ctx))
            {
                result = PrecomputedGradient.OwnView(stored);
            }
            else
            {
                long rows = logits.shape[0];
                result = empty_like(logits);
                RunKernel(logits, targets, counted, result, new double[rows], new double[rows], new double[rows], call, call.PerRow ? 1 : call.Scale);
            }
            // loss.backward() passes 1 and leaves the gradient as it is.
            if (call.PerRow || factor.ToDouble() != 1.0) result.mul_(factor);
        }
        return [result.MoveToOuterDisposeScope(), null!, null!, null!];
    }

    /// <summary>The gradient written over the logits, handed over once; nothing is left to rebuild it from.</summary>
    /// <remarks>TorchSharp 0.107 does not carry an exception out of a backward: a refusal ends the process, with its message printed.</remarks>
    private static Tensor InPlaceBackward(autograd.AutogradContext ctx, Tensor gradOutput)
    {
        bool createGraph = is_grad_enabled();
        if (InPlaceRefusal(createGraph, createGraph || !PrecomputedGradient.Take(ctx)) is { } refusal)
            throw new InvalidOperationException(refusal);
        var gradient = PrecomputedGradient.OwnView(ctx.get_saved_variables()[0]);
        var factor = gradOutput.to(gradient.dtype);
        if (factor.dim() > 0) gradient.mul_(factor.unsqueeze(1));
        else if (factor.ToDouble() != 1.0) gradient.mul_(factor);
        return gradient;
    }

    /// <summary>Why a backward of an in-place gradient cannot run (a graph recorded, or the gradient already taken), or null.</summary>
    internal static string? InPlaceRefusal(bool createGraph, bool alreadyTaken) =>
        createGraph
            ? "GradientInPlace overwrote the logits with their gradient, so a backward with create_graph cannot differentiate it; turn GradientInPlace off for higher derivatives."
            : alreadyTaken
                ? "GradientInPlace overwrote the logits with their gradient, which autograd already took; a second backward through a retained graph needs GradientInPlace off."
                : null;

    /// <summary>
    /// Runs <see cref="FusedCrossEntropyKernel"/> on tensors: logits [R, K], targets [R], counted [R] (CPU, contiguous),
    /// writing the gradient into <paramref name="gradient"/> (null = none; may be <paramref name="logits"/> itself) and
    /// the per-row results into the spans, each R long.
    /// </summary>
    /// <remarks>With a non-empty <paramref name="rowLse"/> the gradient receives the softmax instead (see <see cref="FusedCrossEntropyKernel.Run{T}"/>).</remarks>
    internal static unsafe void RunKernel(
        Tensor logits, Tensor targets, Tensor counted, Tensor? gradient, Span<double> rowLoss, Span<double> rowNll, Span<double> rowZLoss,
        FusedCrossEntropyCall call, double gradientScale, Tensor? rowGradientScale = null, Span<double> rowLse = default)
    {
        if (logits.dtype == ScalarType.Float64)
            RunKernel<double>(logits, targets, counted, gradient, rowLoss, rowNll, rowZLoss, call, gradientScale, rowGradientScale, rowLse);
        else
            RunKernel<float>(logits, targets, counted, gradient, rowLoss, rowNll, rowZLoss, call, gradientScale, rowGradientScale, rowLse);
    }

    private static unsafe void RunKernel<T>(
        Tensor logits, Tensor targets, Tensor counted, Tensor? gradient, Span<double> rowLoss, Span<double> rowNll, Span<double> rowZLoss,
        FusedCrossEntropyCall call, double gradientScale, Tensor? rowGradientScale, Span<double> rowLse) where T : unmanaged, IFloatingPointIeee754<T>
    {
        fixed (double* loss = rowLoss, nll = rowNll, z = rowZLoss, lse = rowLse)
        fixed (T* classWeights = call.ClassWeightsAs<T>())
        {
            FusedCrossEntropyKernel.Run(
                TensorMemory.Pointer<T>(logits), TensorMemory.Pointer<long>(targets), TensorMemory.Pointer<bool>(counted),
                gradient is null ? null : TensorMemory.Pointer<T>(gradient),
                loss, nll, z, logits.shape[0], logits.shape[1], call.Epsilon, call.ZLossWeight, gradientScale,
                rowGradientScale is null ? null : TensorMemory.Pointer<T>(rowGradientScale), classWeights, rowLse.IsEmpty ? null : lse);
        }
    }

    /// <summary>A sequential sum, so results do not depend on how rows were split across threads.</summary>
    internal static double SumInOrder(double[] values)
    {
        double sum = 0;
        foreach (double v in values) sum += v;
        return sum;
    }
}
