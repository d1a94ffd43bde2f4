using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss.Benchmarks;

/// <summary>
/// Stands in for the output head in the in-place benchmark: returns a preallocated [N, V] tensor as a fresh non-leaf,
/// non-view autograd output (what <c>hidden.mm(weight.t())</c> would return) without allocating or computing anything,
/// and passes no gradient on, so the timing is the loss's alone.
/// </summary>
internal sealed class HeadOutput : autograd.SingleTensorFunction<HeadOutput>
{
    public override string Name => nameof(HeadOutput);

    /// <summary>The logits over <paramref name="buffer"/>'s memory (a leaf that requires a gradient).</summary>
    public static Tensor Apply(Tensor buffer) => apply(buffer);

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars) => ((Tensor)vars[0]).detach();

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad_output) => [null!];
}
