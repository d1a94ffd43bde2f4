using TorchLoss;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TorchLoss.Benchmarks;

/// <summary>
/// Forward + backward of a preference loss on an output head: hidden [2P, T, d] and weight [V, d] are leaves, every
/// sequence has a 64-token prompt and an answer of 96 to 192 tokens followed by padding, and the reference model's
/// log-probabilities are precomputed values. Composed: logits = hidden·weightᵀ [2P, T, V], then log-softmax, gather and
/// the loss (<see cref="PreferenceLoss"/> with its libtorch backend, or with its fused per-row kernel on the logits).
/// Fused head: <see cref="ChunkedLinearPreferenceLoss"/>.
/// </summary>
public sealed class PreferenceHeadWorkload : IDisposable
{
    private readonly Tensor _hidden;
    private readonly Tensor _weight;
    private readonly Tensor _labels;
    private readonly Tensor _mask;
    private readonly PreferenceReference? _reference;
    private readonly PreferenceLoss _composed;
    private readonly PreferenceLoss _composedKernel;
    private readonly ChunkedLinearPreferenceLoss _head;

    /// <summary>Allocates the inputs (seeded) and the modules.</summary>
    public PreferenceHeadWorkload(long pairs, long length, long width, long classes, PreferenceOptions options)
    {
        var gen = new Generator(5);
        _hidden = randn([2 * pairs, length, width], generator: gen).requires_grad_(true);
        _weight = randn([classes, width], generator: gen).div_(Math.Sqrt(width)).requires_grad_(true);
        _labels = randint(0, classes, [2 * pairs, length], generator: gen);
        _mask = zeros([2 * pairs, length], ScalarType.Bool);
        const long prompt = 64;
        for (long row = 0; row < 2 * pairs; row++)
        {
            long answer = Math.Min(length - prompt, 96 + 96 * row / (2 * pairs));
            _mask[row, TensorIndex.Slice(prompt, prompt + answer)] = true;
            _labels[row, TensorIndex.Slice(prompt + answer, length)] = LossDefaults.IgnoreIndex;
        }
        if (options.NeedsReference)
        {
            var counts = _mask.sum(1, type: ScalarType.Int64);
            var sums = -counts.to(ScalarType.Float32) * Math.Log(classes) + randn([2 * pairs], generator: gen);
            _reference = PreferenceReference.FromValues(sums[..(int)pairs], counts[..(int)pairs], sums[(int)pairs..], counts[(int)pairs..]);
        }
        _composed = new PreferenceLoss(options with { Backend = CrossEntropyBackend.LibTorch });
        _composedKernel = new PreferenceLoss(options with { Backend = CrossEntropyBackend.Fused });
        _head = new ChunkedLinearPreferenceLoss(options);
    }

    /// <summary>The [2P, T, V] logits by matmul, libtorch's log-softmax and gather, the loss, backward.</summary>
    public void Composed() => RunComposed(_composed);

    /// <summary>The [2P, T, V] logits by matmul, the library's fused log-prob kernel on them, the loss, backward.</summary>
    public void ComposedKernel() => RunComposed(_composedKernel);

    /// <summary><see cref="ChunkedLinearPreferenceLoss"/>, backward.</summary>
    public void FusedHead()
    {
        using var scope = NewDisposeScope();
        ResetGradients();
        using var result = _head.Compute(_hidden, _weight, _labels, _mask, _reference);
        result.Loss.backward();
    }

    private void RunComposed(PreferenceLoss loss)
    {
        using var scope = NewDisposeScope();
        ResetGradients();
        var logits = F.linear(_hidden, _weight);
        using var result = loss.Compute(logits, _labels, _mask, _reference);
        result.Loss.backward();
    }

    private void ResetGradients()
    {
        _hidden.grad = null;
        _weight.grad = null;
    }

    /// <summary>Frees the tensors and the modules.</summary>
    public void Dispose()
    {
        ResetGradients();
        _hidden.Dispose();
        _weight.Dispose();
        _labels.Dispose();
        _mask.Dispose();
        _reference?.Dispose();
        _composed.Dispose();
        _composedKernel.Dispose();
        _head.Dispose();
    }
}
