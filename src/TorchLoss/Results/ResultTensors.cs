using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss;

/// <summary>
/// The tensors a result type owns, loss first, with the three things every result does with them: move them out
/// of a <see cref="DisposeScope"/>, hand the loss to <c>forward</c> and free the rest, or free them all.
/// </summary>
internal readonly struct ResultTensors(params Tensor[] tensors)
{
    public void MoveToOuterDisposeScope()
    {
        foreach (var t in tensors) t.MoveToOuterDisposeScope();
    }

    public Tensor TakeFirst()
    {
        foreach (var t in tensors.AsSpan(1)) t.Dispose();
        return tensors[0];
    }

    public void Dispose()
    {
        foreach (var t in tensors) t.Dispose();
    }
}
