using TorchLoss.Kernels;
using static TorchSharp.torch;

namespace TorchLoss;

/// <summary>The refusals of <see cref="CrossEntropyOptions.GradientInPlace"/> that can be decided in forward.</summary>
internal static class GradientInPlaceCheck
{
    /// <summary>Throws when writing the gradient into <paramref name="logits"/> (the caller's tensor) could corrupt anything.</summary>
    /// <exception cref="ArgumentException">The logits are a leaf or a view, or views cannot be detected here.</exception>
    public static void Check(Tensor logits, CrossEntropyOptions options, string name)
    {
        // Without a gradient to write (no_grad, evaluation, logits that need none) nothing is overwritten.
        if (!options.GradientInPlace || !logits.requires_grad || !is_grad_enabled()) return;
        if (logits.is_leaf)
        {
            throw new ArgumentException(
                "GradientInPlace writes the gradient into the logits' storage, but these logits are a leaf tensor (a parameter or an input the caller holds), " +
                "whose values would be lost; it applies to logits computed by the model (the head's output).", name);
        }
        if (!AutogradState.IsAvailable)
        {
            throw new ArgumentException(
                "GradientInPlace needs to check that the logits are not a view, and this libtorch build does not expose at::TensorBase::is_view; turn GradientInPlace off.", name);
        }
        if (AutogradState.IsView(logits))
        {
            throw new ArgumentException(
                $"GradientInPlace writes the gradient into the logits' storage, but these logits {InputChecks.Shape(logits)} are a view of another tensor, " +
                "which would be overwritten too; pass the head's own output (reshape its input, not its output).", name);
        }
    }
}
