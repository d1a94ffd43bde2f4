using TorchSharp;

namespace TorchLoss;

/// <summary>Options of the cross-entropy modules, fixed when a module is constructed.</summary>
public sealed record CrossEntropyOptions
{
    /// <summary>Label smoothing ε in [0, 1); 0 turns smoothing off.</summary>
    public double LabelSmoothing { get; init; }

    /// <summary>How the smoothing mass is spread; see <see cref="SmoothingKind"/>.</summary>
    public SmoothingKind Smoothing { get; init; } = SmoothingKind.Uniform;

    /// <summary>Target value that is not counted (PyTorch's default, -100).</summary>
    public long IgnoreIndex { get; init; } = -100;

    /// <summary>How per-token losses are combined: mean over counted tokens, sum, or none (per token).</summary>
    public torch.nn.Reduction Reduction { get; init; } = torch.nn.Reduction.Mean;

    /// <summary>Weight of PaLM's z-loss, weight·logsumexp(logits)² per counted token; must be ≥ 0.</summary>
    public double ZLossWeight { get; init; }

    /// <summary>
    /// Check that targets lie in [0, C) also for tensors on an accelerator. On the CPU targets are always
    /// checked; on CUDA the check reads a value back to the host and so waits for the device, which is why
    /// it is off by default there (an out-of-range target then fails inside libtorch instead).
    /// </summary>
    public bool CheckTargetsOnAccelerator { get; init; }

    /// <summary>
    /// Which implementation computes the loss: <see cref="CrossEntropyBackend.Auto"/> (default) picks the fused CPU
    /// kernel where it is faster and libtorch elsewhere; the other values force one path.
    /// </summary>
    public CrossEntropyBackend Backend { get; init; } = CrossEntropyBackend.Auto;

    /// <summary>The default options: no smoothing, ignore index -100, mean reduction, no z-loss.</summary>
    public static CrossEntropyOptions Default { get; } = new();

    internal void Validate()
    {
        if (double.IsNaN(LabelSmoothing) || LabelSmoothing < 0 || LabelSmoothing >= 1)
            throw new ArgumentException($"LabelSmoothing must be in [0, 1), got {LabelSmoothing}.", nameof(LabelSmoothing));
        if (double.IsNaN(ZLossWeight) || ZLossWeight < 0 || double.IsInfinity(ZLossWeight))
            throw new ArgumentException($"ZLossWeight must be a finite value ≥ 0, got {ZLossWeight}.", nameof(ZLossWeight));
        if (!Enum.IsDefined(Smoothing))
            throw new ArgumentException($"Unknown smoothing kind {Smoothing}.", nameof(Smoothing));
        if (!Enum.IsDefined(Reduction))
            throw new ArgumentException($"Unknown reduction {Reduction}.", nameof(Reduction));
        if (!Enum.IsDefined(Backend))
            throw new ArgumentException($"Unknown cross-entropy backend {Backend}.", nameof(Backend));
    }
}
