using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss.Kernels;

/// <summary>The backward of the fused losses, whose forward already wrote the gradient and saved it in the context.</summary>
internal static class PrecomputedGradient
{
    /// <summary>
    /// The saved gradient times <paramref name="gradOutput"/> (a scalar, or one value per row of a per-row loss).
    /// </summary>
    /// <exception cref="InvalidOperationException">The forward ran without writing a gradient.</exception>
    public static Tensor Scaled(autograd.AutogradContext ctx, Tensor gradOutput, string what)
    {
        var saved = ctx.get_saved_variables();
        if (saved.Count == 0 || saved[0] is null)
            throw new InvalidOperationException($"The fused {what} ran without a gradient (no_grad or inputs without requires_grad), so it cannot backpropagate.");
        var gradient = saved[0];
        if (gradOutput.dim() == 0)
        {
            // The common case, loss.backward(), passes 1: hand the stored gradient over without touching it.
            // Otherwise scale in place: a second backward through the same graph then fails in libtorch's
            // saved-variable version check instead of silently using a scaled gradient.
            if (gradOutput.ToDouble() != 1.0) gradient.mul_(gradOutput.to(gradient.dtype));
        }
        else
        {
            gradient.mul_(gradOutput.to(gradient.dtype).unsqueeze(1));
        }
        return gradient;
    }
}
