using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss.Kernels;

/// <summary>The backward of the fused losses, whose forward already wrote the gradient and saved it in the context.</summary>
internal static class PrecomputedGradient
{
    /// <summary>
    /// True the first time a first-order backward asks for the gradient stored in forward; later calls (backward
    /// again through a retained graph) must compute a new one. Autograd may keep a handed-over gradient as the
    /// input's <c>.grad</c> and accumulate into it in place, so it cannot be handed over twice.
    /// </summary>
    public static bool Take(autograd.AutogradContext ctx)
    {
        if (ctx.get_data("gradientTaken") is true) return false;
        ctx.save_data("gradientTaken", true);
        return true;
    }

    /// <summary>
    /// A tensor on the memory of <paramref name="stored"/> (no copy) with its own version counter: what autograd or
    /// a backward later does to it in place does not invalidate the saved variable, whose values are no longer used.
    /// </summary>
    public static Tensor OwnView(Tensor stored) => empty(0, stored.dtype, stored.device).set_(stored);

    /// <summary>
    /// The saved gradient times <paramref name="gradOutput"/> (a scalar, or one value per row of a per-row loss), for a
    /// fused loss that cannot recompute its gradient: a backward that would need that (a second one through a retained
    /// graph, or one that records a graph for higher derivatives) gets a clear error instead of a wrong gradient.
    /// </summary>
    /// <exception cref="InvalidOperationException">The forward wrote no gradient, or the backward needs a new or differentiable one.</exception>
    public static Tensor Scaled(autograd.AutogradContext ctx, Tensor gradOutput, string what)
    {
        var saved = ctx.get_saved_variables();
        if (saved.Count == 0 || saved[0] is null)
            throw new InvalidOperationException($"The fused {what} ran without a gradient (no_grad or inputs without requires_grad), so it cannot backpropagate.");
        if (is_grad_enabled())
            throw new InvalidOperationException($"The fused {what} computes its gradient in forward, without a graph, so it has no higher derivatives; for a backward with create_graph set Backend = LibTorch.");
        if (!Take(ctx))
            throw new InvalidOperationException($"The fused {what} hands its precomputed gradient over once; for a second backward through a retained graph set Backend = LibTorch.");
        var gradient = OwnView(saved[0]);
        // The common case, loss.backward(), passes 1: hand the stored gradient over without touching it.
        if (gradOutput.dim() == 0)
        {
            if (gradOutput.ToDouble() != 1.0) gradient.mul_(gradOutput.to(gradient.dtype));
        }
        else
        {
            gradient.mul_(gradOutput.to(gradient.dtype).unsqueeze(1));
        }
        return gradient;
    }
}
