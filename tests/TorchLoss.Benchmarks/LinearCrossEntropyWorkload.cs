using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TorchLoss.Benchmarks;

/// <summary>
/// Forward + backward of an output head and its loss: hidden [N, d] and weight [V, d] are leaves, targets have
/// 10% ignored. Plain: logits = hidden·weightᵀ, then libtorch's cross_entropy. Chunked: <see cref="ChunkedLinearCrossEntropy"/>.
/// Peaked: a constant bias keeps 5% of the vocabulary active and puts the rest 30 nats lower (a trained model's
/// shape), which the chunked head's gradient filter skips; the targets are then drawn from the active classes.
/// </summary>
public sealed class LinearCrossEntropyWorkload : IDisposable
{
    private readonly Tensor _hidden;
    private readonly Tensor _weight;
    private readonly Tensor _target;
    private readonly Tensor? _bias;
    private readonly ChunkedLinearCrossEntropy _chunked;
    private readonly ChunkedLinearCrossEntropy _exact;
    private readonly double _epsilon;
    private Tensor? _logitsBuffer;
    private Tensor? _gradHiddenBuffer;
    private Tensor? _gradWeightBuffer;

    /// <summary>Allocates the inputs (seeded) and the module.</summary>
    public LinearCrossEntropyWorkload(long rows, long width, long classes, double epsilon, bool peaked = false, double ignoredFraction = 0.1)
    {
        _epsilon = epsilon;
        var gen = new Generator(7);
        _hidden = randn([rows, width], generator: gen).requires_grad_(true);
        _weight = (randn([classes, width], generator: gen) / Math.Sqrt(width)).requires_grad_(true);
        long active = peaked ? classes / 20 : classes;
        if (peaked) _bias = full([classes], -30f).index_fill_(0, arange(active), 0f);
        var target = randint(0, active, [rows], generator: gen);
        _target = target.masked_fill(rand([rows], generator: gen).lt(ignoredFraction), -100);
        target.Dispose();
        var options = new CrossEntropyOptions { LabelSmoothing = epsilon };
        _chunked = new ChunkedLinearCrossEntropy(options);
        _exact = new ChunkedLinearCrossEntropy(options, gradientFilter: 0);
    }

    /// <summary>The [N, V] logits by matmul, libtorch's cross_entropy, backward.</summary>
    public void Plain()
    {
        using var scope = NewDisposeScope();
        ResetGradients();
        var logits = _hidden.mm(_weight.t());
        if (_bias is not null) logits = logits + _bias;
        F.cross_entropy(logits, _target, ignore_index: -100, label_smoothing: _epsilon).backward();
    }

    /// <summary><see cref="ChunkedLinearCrossEntropy"/> with its default gradient filter, backward.</summary>
    public void Chunked() => Run(_chunked);

    /// <summary><see cref="ChunkedLinearCrossEntropy"/> in exact mode (no filter), backward.</summary>
    public void ChunkedExact() => Run(_exact);

    /// <summary>
    /// The floor of any head: the three matmuls alone (logits, ∂hidden, ∂weight) into buffers allocated on the
    /// first call, the logits standing in for their own gradient. Not a loss; only its time is meaningful.
    /// </summary>
    public void Matmuls()
    {
        using var scope = NewDisposeScope();
        _logitsBuffer ??= empty([_hidden.shape[0], _weight.shape[0]]).DetachFromDisposeScope();
        _gradHiddenBuffer ??= empty_like(_hidden).DetachFromDisposeScope();
        _gradWeightBuffer ??= empty_like(_weight).DetachFromDisposeScope();
        using var _ = no_grad();
        _logitsBuffer.addmm_(_hidden, _weight.t(), beta: 0, alpha: 1);
        _gradHiddenBuffer.addmm_(_logitsBuffer, _weight, beta: 0, alpha: 1);
        _gradWeightBuffer.addmm_(_logitsBuffer.t(), _hidden, beta: 0, alpha: 1);
    }

    private void Run(ChunkedLinearCrossEntropy head)
    {
        using var scope = NewDisposeScope();
        ResetGradients();
        using var result = head.Compute(_hidden, _weight, _target, bias: _bias);
        result.Loss.backward();
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
        _bias?.Dispose();
        _logitsBuffer?.Dispose();
        _gradHiddenBuffer?.Dispose();
        _gradWeightBuffer?.Dispose();
        _chunked.Dispose();
        _exact.Dispose();
    }
}
