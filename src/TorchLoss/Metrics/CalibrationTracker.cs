using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss.Metrics;

/// <summary>
/// How well a model's confidence matches how often it is right, over many batches: top-1 and top-k accuracy,
/// mean confidence (top-1 probability), mean predictive entropy, the Brier score, and the expected and maximum
/// calibration errors (ECE, MCE) over equal-width confidence bins, with the bins themselves for a reliability
/// diagram. It counts exactly the tokens the losses count: targets equal to the ignore index and positions where
/// the loss mask is false are left out.
/// </summary>
/// <remarks>
/// <para>
/// <b>Binning.</b> ECE is the L1 form of Guo et al. (2017), the definition of torchmetrics' multiclass
/// <c>CalibrationError(norm="l1")</c>: Σ_b (n_b / N) |accuracy_b − confidence_b|; MCE is its <c>norm="max"</c>.
/// The top-1 probability c is rounded to float32 (as torchmetrics bins it) and compared with the edges
/// e_b = b/M correctly rounded to float32 (ties to even), b = 0…M: bin b (0 ≤ b &lt; M) holds e_b ≤ c &lt; e_(b+1) — a
/// confidence exactly on an edge belongs to the upper bin, 0 to the first — and c = 1 is a bin of its own, as in
/// torchmetrics (<c>bucketize(c, linspace(0, 1, M+1), right=True) - 1</c> gives it index M). ECE and MCE sum and
/// maximise over these M + 1 bins; <see cref="CalibrationSnapshot.ReliabilityBins"/> shows M bins, the last one
/// holding the tokens of c = 1 as well. The edges do not depend on the libtorch version. The result equals
/// torchmetrics' except for a float32 confidence lying between torchmetrics' float32 <c>linspace</c> edge and e_b,
/// where the two differ (by one or two float32 steps, at edges that vary with the libtorch version): there torchmetrics
/// puts it in the neighbouring bin (docs/calibration.md lists where). The Brier score is Σ_c (p_c − 1[c = target])² = Σ_c p_c² − 2 p_target + 1, computed without
/// a one-hot tensor.
/// </para>
/// <para>
/// <b>No host synchronisation per update.</b> Totals are float64 / int64 tensors on the device of the first update,
/// added to in place (bins with <c>index_add_</c>); values reach the host only when <see cref="Snapshot"/> is read,
/// and are cached until the next change. Probabilities are computed in float32 (float64 for float64 logits).
/// </para>
/// <para>
/// <b>Non-finite rows.</b> A counted token whose logits hold NaN or ±∞ is left out of every total and counted in
/// <see cref="CalibrationSnapshot.SkippedRows"/>.
/// </para>
/// <para>Not thread-safe. Dispose it: it owns tensors, which are kept out of any <see cref="DisposeScope"/>.</para>
/// </remarks>
/// <example>
/// <code>
/// using var calibration = new CalibrationTracker(new CalibrationOptions { Bins = 15, TopK = 5, Causal = true });
/// calibration.Update(model.forward(ids), ids, mask);   // Causal = true: same inputs as a causal TokenCrossEntropy
/// var s = calibration.Snapshot();
/// Console.WriteLine($"accuracy {s.Accuracy:P1}, confidence {s.MeanConfidence:P1}, ECE {s.Ece:F4}");
/// </code>
/// </example>
public sealed class CalibrationTracker : IDisposable
{
    // Columns of the float64 sums and int64 counts.
    private const int ConfidenceColumn = 0;
    private const int EntropyColumn = 1;
    private const int BrierColumn = 2;
    private const int TokensColumn = 0;
    private const int Top1Column = 1;
    private const int TopKColumn = 2;
    private const int SkippedColumn = 3;

    // Per-bin totals have M + 1 slots: the M bins, then the one of confidence exactly 1.
    private readonly TrackerState _state = new();
    private readonly StateTensor _sums;          // float64 [3]: Σ confidence, Σ entropy, Σ Brier
    private readonly StateTensor _counts;        // int64 [4]: tokens, top-1 correct, top-k correct, skipped rows
    private readonly StateTensor _binCounts;     // int64 [M + 1]
    private readonly StateTensor _binConfidence; // float64 [M + 1]
    private readonly StateTensor _binCorrect;    // int64 [M + 1]
    private readonly ConfidenceBins _bins;
    private long _updates;
    private CalibrationSnapshot? _cached;
    private bool _disposed;

    /// <summary>Creates a tracker; its state starts on the CPU and moves to the device of the first update.</summary>
    /// <param name="options">Bins, k and ignore index; <see cref="CalibrationOptions.Default"/> when null.</param>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    public CalibrationTracker(CalibrationOptions? options = null)
    {
        Options = options ?? CalibrationOptions.Default;
        Options.Validate();
        TorchBackend.EnsureLoaded();
        _sums = _state.Add(ScalarType.Float64, 3);
        _counts = _state.Add(ScalarType.Int64, 4);
        _binCounts = _state.Add(ScalarType.Int64, Options.Bins + 1);
        _binConfidence = _state.Add(ScalarType.Float64, Options.Bins + 1);
        _binCorrect = _state.Add(ScalarType.Int64, Options.Bins + 1);
        _bins = new ConfidenceBins(Options.Bins, _state);
    }

    /// <summary>The options this tracker was built with.</summary>
    public CalibrationOptions Options { get; }

    /// <summary>Number of updates folded in (host-side; reading it never synchronises).</summary>
    public long Updates
    {
        get
        {
            ThrowIfDisposed();
            return _updates;
        }
    }

    /// <summary>
    /// Folds in predictions with their targets, as <see cref="TokenCrossEntropy"/> with the same
    /// <see cref="CalibrationOptions.Causal"/> takes them. Runs on the logits' device without reading values back;
    /// the inputs stay owned by the caller.
    /// </summary>
    /// <param name="logits">Scores [..., V], classes last, of a floating-point dtype; with <see cref="CalibrationOptions.Causal"/> a model's output [B, T, V].</param>
    /// <param name="targets">
    /// Class indices [...] of an integer dtype (with <see cref="CalibrationOptions.Causal"/> the token sequence [B, T], unshifted);
    /// <see cref="CalibrationOptions.IgnoreIndex"/> marks uncounted positions.
    /// </param>
    /// <param name="lossMask">Optional bool [...] aligned with <paramref name="targets"/>: true = counted. Combined with the ignore index.</param>
    /// <exception cref="ArgumentException">Shapes, dtypes, devices or target values are invalid.</exception>
    public void Update(Tensor logits, Tensor targets, Tensor? lossMask = null) => Fold(logits, targets, lossMask, Options.Causal);

    /// <summary>
    /// Folds in a causal language model's predictions with unshifted labels, whatever <see cref="CalibrationOptions.Causal"/>
    /// says. Superseded by <see cref="CalibrationOptions.Causal"/> and <see cref="Update(Tensor, Tensor, Tensor?)"/>, the one
    /// way the library says causal; kept so that existing calls work.
    /// </summary>
    /// <param name="logits">Model output [B, T, V]; position t predicts token t+1.</param>
    /// <param name="labels">The token sequence [B, T], unshifted; ignored positions hold <see cref="CalibrationOptions.IgnoreIndex"/>.</param>
    /// <param name="lossMask">Optional bool [B, T] aligned with <paramref name="labels"/>: true = this token is counted.</param>
    /// <exception cref="ArgumentException">Shapes, dtypes, devices or label values are invalid.</exception>
    [Obsolete("Set CalibrationOptions.Causal = true and call Update.")]
    public void UpdateCausal(Tensor logits, Tensor labels, Tensor? lossMask = null) => Fold(logits, labels, lossMask, causal: true);

    private void Fold(Tensor logits, Tensor targets, Tensor? lossMask, bool causal)
    {
        InputChecks.CheckLogits(logits, nameof(logits));
        if (causal) InputChecks.CheckSequenceBatch(logits, nameof(logits), "V");
        ThrowIfDisposed();
        using var scope = NewDisposeScope();
        // The losses' own validation and counting (ignore index, mask, causal shift), so the tracker counts exactly their tokens.
        var spec = new TargetSpec
        {
            ScoresName = nameof(logits),
            TargetName = causal ? "labels" : nameof(targets),
            Classes = logits.shape[^1],
            ClassesFrom = $"logits shape {InputChecks.Shape(logits)}",
            IgnoreIndex = Options.IgnoreIndex,
            Causal = causal,
        };
        Fold(logits, TargetPreparation.Prepare(logits, targets, lossMask, spec));
    }

    /// <summary>
    /// Adds another tracker's totals to this one (data-parallel workers, evaluation shards): computing after merging
    /// equals computing over the union of their updates. <paramref name="other"/> is unchanged; it may live on another device.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="other"/> is this tracker, or has other bins or another k.</exception>
    public void Merge(CalibrationTracker other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (ReferenceEquals(other, this))
            throw new ArgumentException("A tracker cannot be merged into itself; that would count every update twice.", nameof(other));
        if (other.Options.Bins != Options.Bins || other.Options.TopK != Options.TopK)
            throw new ArgumentException(
                $"Only trackers with the same bins and k can be merged: this one has {Options.Bins} bins and top-{Options.TopK}, the other {other.Options.Bins} bins and top-{other.Options.TopK}.",
                nameof(other));
        ThrowIfDisposed();
        other.ThrowIfDisposed();
        _state.Merge(other._state);
        _updates += other._updates;
        _cached = null;
    }

    /// <summary>Clears all totals; the device stays.</summary>
    public void Reset()
    {
        ThrowIfDisposed();
        _state.Reset();
        _updates = 0;
        _cached = null;
    }

    /// <summary>The totals as a serialisable value, with every metric derived from them. Reads the device (cached until the next change).</summary>
    public CalibrationSnapshot Snapshot()
    {
        ThrowIfDisposed();
        if (_cached is null)
        {
            double[] sums = _sums.ReadDoubles();
            long[] counts = _counts.ReadLongs();
            long[] binCounts = _binCounts.ReadLongs(), binCorrect = _binCorrect.ReadLongs();
            double[] binConfidence = _binConfidence.ReadDoubles();
            int m = Options.Bins;
            _cached = new CalibrationSnapshot(m, Options.TopK, _updates, counts[TokensColumn], counts[Top1Column], counts[TopKColumn],
                sums[ConfidenceColumn], sums[EntropyColumn], sums[BrierColumn], counts[SkippedColumn],
                binCounts[..m], binConfidence[..m], binCorrect[..m], binCounts[m], binConfidence[m], binCorrect[m]);
        }
        return _cached;
    }

    /// <summary>Replaces the totals with <paramref name="snapshot"/>'s, e.g. when resuming from a checkpoint.</summary>
    /// <exception cref="ArgumentException">The snapshot was taken with other bins or another k, or its totals are impossible.</exception>
    public void Restore(CalibrationSnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        if (snapshot.Bins != Options.Bins || snapshot.TopK != Options.TopK)
            throw new ArgumentException(
                $"The snapshot has {snapshot.Bins} bins and top-{snapshot.TopK}; this tracker has {Options.Bins} bins and top-{Options.TopK}.", nameof(snapshot));
        if (!IsValid(snapshot))
            throw new ArgumentException($"The snapshot is not a valid set of totals: {Describe(snapshot)}.", nameof(snapshot));
        ThrowIfDisposed();
        _sums.Load([snapshot.ConfidenceSum, snapshot.EntropySum, snapshot.BrierSum]);
        _counts.Load([snapshot.Tokens, snapshot.Top1Correct, snapshot.TopKCorrect, snapshot.SkippedRows]);
        _binCounts.Load([.. snapshot.BinCounts, snapshot.CertainTokens]);
        _binConfidence.Load([.. snapshot.BinConfidenceSums, snapshot.CertainConfidenceSum]);
        _binCorrect.Load([.. snapshot.BinCorrect, snapshot.CertainCorrect]);
        _updates = snapshot.Updates;
        _cached = null;
    }

    /// <summary>Frees the tensors.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _state.Dispose();
    }

    /// <summary>Per-token statistics of logits [..., V] and their prepared targets, folded into the totals.</summary>
    private void Fold(Tensor logits, PreparedTargets prepared)
    {
        using var noGrad = no_grad();
        _state.PinTo(logits.device);
        var device = _state.Device;
        long classes = logits.shape[^1];
        var rows = (logits.dtype == ScalarType.Float64 ? logits : logits.to(ScalarType.Float32)).reshape(-1, classes);
        var target = prepared.Target;
        var counted = prepared.Counted;
        var finite = rows.isfinite().all(1);
        var skipped = counted.logical_and(finite.logical_not());
        counted = counted.logical_and(finite);
        var left = counted.logical_not();
        var safeTarget = target.masked_fill(left, 0);

        var logp = rows.log_softmax(1);
        var p = logp.exp();
        var (confidence, prediction) = p.max(1);
        var top1 = prediction.eq(safeTarget).logical_and(counted);
        var topIndices = p.topk((int)Math.Min(Options.TopK, classes), dim: 1).indexes;
        var topK = topIndices.eq(safeTarget.unsqueeze(1)).any(1).logical_and(counted);
        var entropy = (p * logp).sum(1).neg();
        var brier = p.square().sum(1) - 2 * p.gather(1, safeTarget.unsqueeze(1)).squeeze(1) + 1;

        // Rows that are not counted may hold NaN: masked_fill replaces them (multiplying by 0 would keep NaN).
        Tensor Counted(Tensor perRow) => perRow.to(ScalarType.Float64).masked_fill(left, 0.0);
        var confidence64 = Counted(confidence);
        var sums = stack([confidence64.sum(), Counted(entropy).sum(), Counted(brier).sum()]).to(device);
        var counts = stack([counted.sum(), top1.sum(), topK.sum(), skipped.sum()]).to(ScalarType.Int64, device);

        var bin = _bins.Index(confidence.masked_fill(left, 0.0)).to(device);
        _binCounts.Value.index_add_(0, bin, counted.to(ScalarType.Int64, device), 1);
        _binConfidence.Value.index_add_(0, bin, confidence64.to(device), 1.0);
        _binCorrect.Value.index_add_(0, bin, top1.to(ScalarType.Int64, device), 1);
        _sums.Value.add_(sums);
        _counts.Value.add_(counts);
        _updates++;
        _cached = null;
    }

    private static bool IsValid(CalibrationSnapshot s)
    {
        bool countsOk = s.Updates >= 0 && s.Tokens >= 0 && s.SkippedRows >= 0
            && s.Top1Correct >= 0 && s.Top1Correct <= s.Tokens && s.TopKCorrect >= 0 && s.TopKCorrect <= s.Tokens
            && (s.Updates > 0 || (s.Tokens == 0 && s.SkippedRows == 0));
        bool sumsOk = new[] { s.ConfidenceSum, s.EntropySum, s.BrierSum }.All(v => double.IsFinite(v) && v >= 0)
            && s.ConfidenceSum <= s.Tokens && s.BrierSum <= 2.0 * s.Tokens;
        if (!countsOk || !sumsOk || s.BinCounts is null || s.BinConfidenceSums is null || s.BinCorrect is null) return false;
        if (s.BinCounts.Length != s.Bins || s.BinConfidenceSums.Length != s.Bins || s.BinCorrect.Length != s.Bins) return false;
        for (int b = 0; b < s.Bins; b++)
        {
            if (s.BinCounts[b] < 0 || s.BinCorrect[b] < 0 || s.BinCorrect[b] > s.BinCounts[b]
                || !double.IsFinite(s.BinConfidenceSums[b]) || s.BinConfidenceSums[b] < 0 || s.BinConfidenceSums[b] > s.BinCounts[b])
                return false;
        }
        bool certainOk = s.CertainTokens >= 0 && s.CertainCorrect >= 0 && s.CertainCorrect <= s.CertainTokens
            && double.IsFinite(s.CertainConfidenceSum) && s.CertainConfidenceSum >= 0 && s.CertainConfidenceSum <= s.CertainTokens;
        return certainOk && s.BinCounts.Sum() + s.CertainTokens == s.Tokens && s.BinCorrect.Sum() + s.CertainCorrect == s.Top1Correct;
    }

    private static string Describe(CalibrationSnapshot s) =>
        $"{s.Updates} updates, {s.Tokens} tokens, {s.Top1Correct} top-1 and {s.TopKCorrect} top-k correct, sums {s.ConfidenceSum}/{s.EntropySum}/{s.BrierSum}, " +
        $"{s.SkippedRows} skipped, bin counts [{string.Join(", ", s.BinCounts ?? [])}], bin correct [{string.Join(", ", s.BinCorrect ?? [])}], " +
        $"{s.CertainTokens} of confidence 1 ({s.CertainCorrect} correct, Σ confidence {s.CertainConfidenceSum})";

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);
}
