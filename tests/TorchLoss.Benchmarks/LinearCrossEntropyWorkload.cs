using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TorchLoss.Benchmarks;

/// <summary>
/// Forward + backward of an output head and its loss: hidden [N, d] and weight [V, d] are leaves, targets have
/// 10% ignored. Plain: logits = hidden·weightᵀ, then libtorch's cross_entropy. Chunked: <see cref="ChunkedLinearCrossEntropy"/>.
/// </summary>
public sealed class LinearCrossEntropyWorkload : IDisposable
{
    private readonly Tensor _hidden;
    private readonly Tensor _weight;
    private readonly Tensor _target;
    private readonly ChunkedLinearCrossEntropy _chunked;
    private readonly double _epsilon;

    /// <summary>Allocates the inputs (seeded) and the module.</summary>
    public LinearCrossEntropyWorkload(long rows, long width, long classes, double epsilon, double ignoredFraction = 0.1)
    {
        _epsilon = epsilon;
        var gen = new Generator(7);
        _hidden = randn([rows, width], generator: gen).requires_grad_(true);
        _weight = (randn([classes, width], generator: gen) / Math.Sqrt(width)).requires_grad_(true);
        var target = randint(0, classes, [rows], generator: gen);
        _target = target.masked_fill(rand([rows], generator: gen).lt(ignoredFraction), -100);
        target.Dispose();
        _chunked = new ChunkedLinearCrossEntropy(new CrossEntropyOptions { LabelSmoothing = epsilon });
    }

    /// <summary>The [N, V] logits by matmul, libtorch's cross_entropy, backward.</summary>
    public void Plain()
    {
        using var scope = NewDisposeScope();
        ResetGradients();
        F.cross_entropy(_hidden.mm(_weight.t()), _target, ignore_index: -100, label_smoothing: _epsilon).backward();
    }

    /// <summary><see cref="ChunkedLinearCrossEntropy"/>, backward.</summary>
    public void Chunked()
    {
        using var scope = NewDisposeScope();
        ResetGradients();
        _chunked.forward(_hidden, _weight, _target).backward();
    }

    private void ResetGradients()
    {
        _hidden.grad = null;
        _weight.grad = null;
    }

    /// <summary>Frees the tensors and the module.</summary>
    public void Dispose()
    {
        ResetGradients();
        _hidden.Dispose();
        _weight.Dispose();
        _target.Dispose();
        _chunked.Dispose();
    }
}
