namespace TorchLoss;

/// <summary>Which implementation computes a <see cref="DistillationLoss"/>; all give the same loss, gradients and totals.</summary>
public enum DistillationBackend
{
    /// <summary>
    /// The fused kernel for <see cref="DistillationDivergence.Forward"/> on contiguous CPU float32 logits, libtorch's
    /// operators otherwise (accelerators, other dtypes, the other divergences).
    /// </summary>
    Auto,

    /// <summary>libtorch operators (one no-grad sweep that keeps only the closed-form gradient): every device, dtype and divergence, and double backward.</summary>
    LibTorch,

    /// <summary>
    /// The fused CPU kernel: one pass per row computes the totals and writes the gradient, so only the gradient is
    /// stored. <see cref="DistillationDivergence.Forward"/> only; float16/bfloat16 are computed in float32; logits on
    /// another device or another divergence are rejected with an <see cref="ArgumentException"/>. Its gradient is
    /// precomputed, so it supports first-order gradients only: for double backward (<c>create_graph</c>) choose <see cref="LibTorch"/>.
    /// </summary>
    Fused,
}
