namespace TorchLoss;

/// <summary>Which implementation computes a cross-entropy; all give the same loss, gradients and totals.</summary>
public enum CrossEntropyBackend
{
    /// <summary>
    /// The fused kernel for contiguous CPU float32 logits of the sizes where it was measured to be faster (the
    /// size-aware dispatch grid in the README's performance section), libtorch otherwise (accelerators, other
    /// dtypes, a single class).
    /// </summary>
    Auto,

    /// <summary>libtorch's operators (log-softmax and its backward): works on every device and dtype.</summary>
    LibTorch,

    /// <summary>
    /// The fused CPU kernel: one pass per row computes the loss and writes the gradient, so only the gradient
    /// is stored instead of the log-softmax and the gradient. Float16/bfloat16 logits are computed in float32;
    /// logits on another device are rejected with an <see cref="ArgumentException"/>, and so are soft (probability)
    /// targets, which <see cref="Auto"/> sends to libtorch; class weights are supported. Its gradient is precomputed;
    /// a backward with <c>create_graph</c> recomputes it from libtorch operators, so higher derivatives are right too.
    /// </summary>
    Fused,
}
