namespace TorchLoss.Metrics;

/// <summary>Options of a <see cref="CalibrationTracker"/>, fixed when it is constructed.</summary>
public sealed record CalibrationOptions
{
    /// <summary>
    /// Number of equal-width confidence bins over [0, 1] for ECE, MCE and reliability diagrams (15, as torchmetrics);
    /// 1 to 2^24 (finer bins than that cannot tell float32 confidences apart). See <see cref="CalibrationTracker"/> for the exact edges.
    /// </summary>
    public int Bins { get; init; } = 15;

    /// <summary>k of the top-k accuracy: a token counts as correct when it is among the k most probable classes.</summary>
    public int TopK { get; init; } = 5;

    /// <summary>Target value that is not counted, as in <see cref="CrossEntropyOptions.IgnoreIndex"/> (<see cref="LossDefaults.IgnoreIndex"/>).</summary>
    public long IgnoreIndex { get; init; } = LossDefaults.IgnoreIndex;

    /// <summary>
    /// Next-token predictions, as <see cref="CrossEntropyOptions.Causal"/>: <see cref="CalibrationTracker.Update"/> takes a
    /// causal model's logits [B, T, V] and the unshifted labels [B, T], and scores position t against label t+1, so it
    /// counts exactly the tokens a causal <see cref="TokenCrossEntropy"/> counts. False (default): aligned targets.
    /// </summary>
    public bool Causal { get; init; }

    /// <summary>The defaults: 15 bins, top-5, ignore index -100, aligned targets.</summary>
    public static CalibrationOptions Default { get; } = new();

    // Float32 confidences near 1 are 2^-24 apart, and ConfidenceBins.Edges is exact below 2^29.
    private const int MaxBins = 1 << 24;

    internal void Validate()
    {
        if (Bins < 1)
            throw new ArgumentException($"Bins must be at least 1, got {Bins}.", nameof(Bins));
        if (Bins > MaxBins)
            throw new ArgumentException($"Bins must be at most {MaxBins}: finer bins cannot tell float32 confidences apart; got {Bins}.", nameof(Bins));
        if (TopK < 1)
            throw new ArgumentException($"TopK must be at least 1, got {TopK}.", nameof(TopK));
    }
}
