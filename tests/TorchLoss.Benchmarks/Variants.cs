namespace TorchLoss.Benchmarks;

/// <summary>
/// A named workload: how to build it and the named actions (variants) it can time. The paired runner gives every
/// variant's ratio to the first; <paramref name="Ratios"/> names further pairs (variant, baseline variant) whose
/// per-round ratios it reports too.
/// </summary>
public sealed record Case(string Name, Func<IDisposable> Create, IReadOnlyList<Variant> Variants, IReadOnlyList<(string Of, string To)>? Ratios = null);

/// <summary>
/// One timed action of a <see cref="Case"/>, given the object the case created; <paramref name="Prepare"/>, when given,
/// runs untimed before every call (e.g. restoring inputs that the call overwrites).
/// </summary>
public sealed record Variant(string Name, Action<object> Run, Action<object>? Prepare = null)
{
    /// <summary>Prepares and runs one call; returns the milliseconds of the call alone.</summary>
    public double TimedCall(object workload)
    {
        Prepare?.Invoke(workload);
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        Run(workload);
        return System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds;
    }
}

/// <summary>The cases of the issue's targets and the vocabulary grid, shared by the paired and memory modes.</summary>
public static class Cases
{
    /// <summary>Built-in vs TorchLoss (plus the forced paths and one copy of the logits) for one logits shape.</summary>
    public static Case CrossEntropy(long rows, long classes, double epsilon) => new(
        $"CE N={rows} V={classes} eps={epsilon}",
        () => new CrossEntropyWorkload(rows, classes, epsilon),
        [
            new("built-in", w => ((CrossEntropyWorkload)w).BuiltIn()),
            new("TorchLoss", w => ((CrossEntropyWorkload)w).TorchLoss()),
            new("TorchLoss fused", w => ((CrossEntropyWorkload)w).TorchLossFused()),
            new("TorchLoss libtorch", w => ((CrossEntropyWorkload)w).TorchLossLibTorch()),
            new("TorchLoss in-place", w => ((CrossEntropyWorkload)w).TorchLossInPlace(), w => ((CrossEntropyWorkload)w).PrepareInPlace()),
            new("copy", w => ((CrossEntropyWorkload)w).CopyLogits()),
            new("clone", w => ((CrossEntropyWorkload)w).CloneLogits()),
        ]);

    /// <summary>
    /// Plain head + cross_entropy vs <see cref="ChunkedLinearCrossEntropy"/> (default filter and exact) and the three
    /// matmuls alone; <paramref name="peaked"/>: 5% of the vocabulary active, the rest 30 nats lower.
    /// </summary>
    public static Case Linear(long rows, long width, long classes, double epsilon, bool peaked = false) => new(
        $"Linear+CE N={rows} d={width} V={classes} eps={epsilon}{(peaked ? " peaked" : "")}",
        () => new LinearCrossEntropyWorkload(rows, width, classes, epsilon, peaked),
        [
            new("plain", w => ((LinearCrossEntropyWorkload)w).Plain()),
            new("chunked", w => ((LinearCrossEntropyWorkload)w).Chunked()),
            new("chunked exact", w => ((LinearCrossEntropyWorkload)w).ChunkedExact()),
            new("matmuls", w => ((LinearCrossEntropyWorkload)w).Matmuls()),
        ]);

    /// <summary>Forward-KL distillation composed from torch's operators vs <see cref="DistillationLoss"/>'s fused kernel and composed path.</summary>
    public static Case Distillation(long rows, long classes) => new(
        $"Distill N={rows} V={classes}",
        () => new DistillationWorkload(rows, classes),
        [
            new("composed", w => ((DistillationWorkload)w).Composed()),
            new("TorchLoss fused", w => ((DistillationWorkload)w).TorchLossFused()),
            new("TorchLoss libtorch", w => ((DistillationWorkload)w).TorchLossLibTorch()),
        ]);

    /// <summary>The built-in vs <see cref="TokenCrossEntropy"/> forced onto libtorch: the fallback path (issue 20 §1).</summary>
    public static Case CrossEntropyFallback(long rows, long classes, double epsilon) => new(
        $"Fallback CE N={rows} V={classes} eps={epsilon}",
        () => new CrossEntropyWorkload(rows, classes, epsilon),
        [
            new("built-in", w => ((CrossEntropyWorkload)w).BuiltIn()),
            new("TorchLoss libtorch", w => ((CrossEntropyWorkload)w).TorchLossLibTorch()),
        ]);

    /// <summary>
    /// <see cref="CrossEntropyOptions.GradientInPlace"/> on a head's output against the built-in and against one copy of
    /// the logits into a preallocated tensor (issue 20 §2).
    /// </summary>
    public static Case CrossEntropyInPlace(long rows, long classes, double epsilon) => new(
        $"In-place CE N={rows} V={classes} eps={epsilon}",
        () => new CrossEntropyWorkload(rows, classes, epsilon),
        [
            new("built-in", w => ((CrossEntropyWorkload)w).BuiltIn()),
            new("TorchLoss in-place", w => ((CrossEntropyWorkload)w).TorchLossInPlace(), w => ((CrossEntropyWorkload)w).PrepareInPlace()),
            new("copy", w => ((CrossEntropyWorkload)w).CopyLogits()),
        ],
        [("TorchLoss in-place", "copy")]);

    /// <summary>A divergence composed from torch's operators vs <see cref="DistillationLoss"/> forced onto libtorch (issue 20 §1).</summary>
    public static Case DistillationFallback(long rows, long classes, DistillationDivergence divergence) => new(
        $"Fallback distill {divergence} N={rows} V={classes}",
        () => new DistillationWorkload(rows, classes, divergence),
        [
            new("composed", w => ((DistillationWorkload)w).Composed()),
            new("TorchLoss libtorch", w => ((DistillationWorkload)w).TorchLossLibTorch()),
        ]);

    /// <summary>The fallback path's target cases: cross-entropy (ε ∈ {0, 0.1}) and the three divergences at N = 4096, V = 32000.</summary>
    public static IReadOnlyList<Case> FallbackTargets() =>
    [
        CrossEntropyFallback(4096, 32000, 0),
        CrossEntropyFallback(4096, 32000, 0.1),
        DistillationFallback(4096, 32000, DistillationDivergence.Forward),
        DistillationFallback(4096, 32000, DistillationDivergence.Reverse),
        DistillationFallback(4096, 32000, DistillationDivergence.JensenShannon),
    ];

    /// <summary>The fallback path at small sizes, where per-call checks and totals could dominate.</summary>
    public static IEnumerable<Case> FallbackSmall()
    {
        foreach (var (rows, classes) in new (long, long)[] { (64, 2), (64, 1000), (512, 65), (512, 1000) })
        {
            yield return CrossEntropyFallback(rows, classes, 0);
            yield return CrossEntropyFallback(rows, classes, 0.1);
            foreach (var divergence in Enum.GetValues<DistillationDivergence>())
                yield return DistillationFallback(rows, classes, divergence);
        }
    }

    /// <summary>The in-place gradient's target case: N = 4096, V = 32000, ε = 0.1, 10% ignored.</summary>
    public static IReadOnlyList<Case> InPlaceTargets() => [CrossEntropyInPlace(4096, 32000, 0.1)];

    /// <summary>
    /// A preference loss on an output head: the composed path (logits, log-softmax, gather, loss; first with libtorch's
    /// operators, then with the fused log-prob kernel on the logits) vs <see cref="ChunkedLinearPreferenceLoss"/>.
    /// </summary>
    public static Case PreferenceHead(long pairs, long length, long width, long classes, PreferenceOptions options) => new(
        $"Preference {options.Loss} P={pairs} T={length} d={width} V={classes}",
        () => new PreferenceHeadWorkload(pairs, length, width, classes, options),
        [
            new("composed", w => ((PreferenceHeadWorkload)w).Composed()),
            new("composed fused log-probs", w => ((PreferenceHeadWorkload)w).ComposedKernel()),
            new("fused head", w => ((PreferenceHeadWorkload)w).FusedHead()),
        ]);

    /// <summary>The preference-head target case (8 pairs, T = 256, d = 512, V = 50257) for DPO and ORPO.</summary>
    public static IReadOnlyList<Case> PreferenceTargets() =>
    [
        PreferenceHead(8, 256, 512, 50257, new PreferenceOptions { Loss = PreferenceLossKind.Dpo }),
        PreferenceHead(8, 256, 512, 50257, new PreferenceOptions { Loss = PreferenceLossKind.Orpo }),
    ];

    /// <summary>The distillation target case (N = 4096, V = 32000) and a small vocabulary.</summary>
    public static IReadOnlyList<Case> DistillationTargets() =>
    [
        Distillation(4096, 32000),
        Distillation(49152, 65),
    ];

    /// <summary>The three cases the issue sets targets for.</summary>
    public static IReadOnlyList<Case> Targets() =>
    [
        CrossEntropy(4096, 32000, 0.1),
        CrossEntropy(49152, 65, 0.1),
        Linear(4096, 512, 50257, 0.1),
        Linear(4096, 512, 50257, 0.1, peaked: true),
    ];

    /// <summary>The vocabulary grid at N = 4096.</summary>
    public static IEnumerable<Case> Grid()
    {
        foreach (long classes in new long[] { 65, 1024, 8192, 32000, 50257 })
        foreach (double epsilon in new[] { 0.0, 0.1 })
            yield return CrossEntropy(4096, classes, epsilon);
    }

    /// <summary>
    /// Small vocabularies at about 2^22 logits each, where per-row costs dominate: the evidence for the class count
    /// from which the automatic backend picks the fused kernel.
    /// </summary>
    public static IEnumerable<Case> ThresholdScan()
    {
        foreach (long classes in new long[] { 2, 4, 8, 16, 32, 65, 256, 1024 })
            yield return CrossEntropy((1L << 22) / classes, classes, 0.1);
    }

    /// <summary>Finds a case by its exact name.</summary>
    public static Case Find(string name) =>
        Targets().Concat(Grid()).Concat(ThresholdScan()).Concat(DistillationTargets()).Concat(PreferenceTargets())
            .Concat(FallbackTargets()).Concat(FallbackSmall()).Concat(InPlaceTargets()).FirstOrDefault(c => c.Name == name)
        ?? throw new ArgumentException($"Unknown case '{name}'.", nameof(name));
}
