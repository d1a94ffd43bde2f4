using TorchLoss;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TorchLoss.Benchmarks;

/// <summary>
/// Forward + backward of a token cross-entropy over leaf logits [N, V] with 10% ignored targets, by libtorch's
/// built-in <c>cross_entropy</c> and by <see cref="TokenCrossEntropy"/>; plus one copy of the logits (the hardware floor).
/// </summary>
public sealed class CrossEntropyWorkload : IDisposable
{
    private readonly Tensor _logits;
    private readonly Tensor _target;
    private Tensor? _copyDestination;
    private readonly TokenCrossEntropy _auto;
    private readonly TokenCrossEntropy _libTorch;
    private readonly TokenCrossEntropy _fused;
    private readonly TokenCrossEntropy _fusedControl;
    private readonly TokenCrossEntropy _inPlace;
    private Tensor? _headBuffer;
    private Tensor? _headLogits;
    private readonly double _epsilon;

    /// <summary>Allocates the inputs (seeded) and the modules.</summary>
    public CrossEntropyWorkload(long rows, long classes, double epsilon, double ignoredFraction = 0.1)
    {
        _epsilon = epsilon;
        var gen = new Generator(42);
        // Scaled in place, so set-up does not leave a second [N, V] tensor in the peak-memory figure.
        _logits = randn([rows, classes], generator: gen).mul_(2).requires_grad_(true);
        var target = randint(0, classes, [rows], generator: gen);
        _target = target.masked_fill(rand([rows], generator: gen).lt(ignoredFraction), -100);
        target.Dispose();
        var options = new CrossEntropyOptions { LabelSmoothing = epsilon };
        _auto = new TokenCrossEntropy(options);
        _libTorch = new TokenCrossEntropy(options with { Backend = CrossEntropyBackend.LibTorch });
        _fused = new TokenCrossEntropy(options with { Backend = CrossEntropyBackend.Fused });
        _fusedControl = new TokenCrossEntropy(options with { Backend = CrossEntropyBackend.Fused });
        _inPlace = new TokenCrossEntropy(options with { Backend = CrossEntropyBackend.Fused, GradientInPlace = true });
    }

    /// <summary>Whether <see cref="CrossEntropyBackend.Auto"/> computes these logits with the fused kernel.</summary>
    public bool AutoPicksFused => FusedCrossEntropyPath.IsSelected(_logits, CrossEntropyBackend.Auto);

    /// <summary>
    /// Microseconds per call of <see cref="CrossEntropyBackend.Auto"/>'s decision alone on these logits: all that
    /// Auto runs besides the path it picks.
    /// </summary>
    public double AutoDecisionMicroseconds(int calls = 100_000)
    {
        bool picked = false;
        for (int i = 0; i < 1000; i++) picked ^= FusedCrossEntropyPath.IsSelected(_logits, CrossEntropyBackend.Auto);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        for (int i = 0; i < calls; i++) picked ^= FusedCrossEntropyPath.IsSelected(_logits, CrossEntropyBackend.Auto);
        double microseconds = sw.Elapsed.TotalMicroseconds / calls;
        GC.KeepAlive(picked);
        return microseconds;
    }

    /// <summary>libtorch's <c>cross_entropy</c> with <c>ignore_index</c> and <c>label_smoothing</c>, then backward.</summary>
    public void BuiltIn()
    {
        using var scope = NewDisposeScope();
        _logits.grad = null;
        F.cross_entropy(_logits, _target, ignore_index: -100, label_smoothing: _epsilon).backward();
    }

    /// <summary>TorchLoss with the automatic backend choice, then backward.</summary>
    public void TorchLoss() => ForwardBackward(_auto);

    /// <summary>TorchLoss forced onto libtorch (the fallback path), then backward.</summary>
    public void TorchLossLibTorch() => ForwardBackward(_libTorch);

    /// <summary>TorchLoss forced onto the fused kernel, then backward.</summary>
    public void TorchLossFused() => ForwardBackward(_fused);

    /// <summary>
    /// The same call as <see cref="TorchLossFused"/> through a second module instance: timed beside it, an A/A
    /// comparison that shows how far two runs of identical code differ in the benchmark.
    /// </summary>
    public void TorchLossFusedControl() => ForwardBackward(_fusedControl);

    private void ForwardBackward(TokenCrossEntropy loss)
    {
        using var scope = NewDisposeScope();
        _logits.grad = null;
        loss.forward(_logits, _target).backward();
    }

    /// <summary>
    /// Untimed before each <see cref="TorchLossInPlace"/>: restores the logits in the head's buffer (the call overwrote
    /// them with their gradient) and hands them out as a fresh head output.
    /// </summary>
    public void PrepareInPlace()
    {
        _headLogits?.Dispose();
        // Allocated (and touched) once, like the copy's destination: in training it is the head's output buffer.
        _headBuffer ??= empty_like(_logits).requires_grad_(true).DetachFromDisposeScope();
        using (no_grad()) _headBuffer.copy_(_logits);
        _headLogits = HeadOutput.Apply(_headBuffer).DetachFromDisposeScope();
    }

    /// <summary>TorchLoss's fused kernel with <see cref="CrossEntropyOptions.GradientInPlace"/> on a head's output, then backward.</summary>
    public void TorchLossInPlace()
    {
        using var scope = NewDisposeScope();
        _inPlace.forward(_headLogits!, _target).backward();
    }

    /// <summary>One copy of the logits into a preallocated tensor: one read and one write of N·V values.</summary>
    public void CopyLogits()
    {
        using var _ = no_grad();
        // Allocated (and its pages touched) on the first call only, so the timed calls measure bandwidth alone
        // and the memory mode's other variants do not carry it.
        _copyDestination ??= empty_like(_logits).DetachFromDisposeScope();
        _copyDestination.copy_(_logits);
    }

    /// <summary>
    /// One copy of the logits into a new tensor: the floor for any operation that returns a fresh [N, V] result,
    /// since the operating system maps and zeroes the new pages on first touch.
    /// </summary>
    public void CloneLogits()
    {
        using var _ = no_grad();
        _logits.clone().Dispose();
    }

    /// <summary>Frees the tensors and modules.</summary>
    public void Dispose()
    {
        _logits.grad = null;
        _logits.Dispose();
        _target.Dispose();
        _copyDestination?.Dispose();
        _auto.Dispose();
        _libTorch.Dispose();
        _fused.Dispose();
        _fusedControl.Dispose();
        _inPlace.Dispose();
        _headLogits?.Dispose();
        _headBuffer?.Dispose();
    }
}
