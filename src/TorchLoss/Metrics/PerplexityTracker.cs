using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss.Metrics;

/// <summary>
/// Token-weighted perplexity over many batches: exp(Σ NLL / Σ tokens), never the mean of per-batch or
/// per-sequence perplexities, and always from the unsmoothed NLL (a label-smoothed loss inflates it).
/// </summary>
/// <remarks>
/// <para>
/// <b>No host synchronisation per update.</b> The totals are float64 / int64 tensors that live on the device of
/// the first <see cref="Update(LossResult, long?, long?)"/> (CPU until then) and are added to in place, so a
/// training step never waits for the GPU. Values are copied to the host only when a metric or snapshot is read,
/// and cached until the next change.
/// </para>
/// <para>
/// <b>Non-finite batches.</b> An update whose NLL sum is NaN or ±∞ is not folded into the totals (neither its
/// NLL nor its tokens or text counts); it is counted in <see cref="SkippedBatches"/>. For tensor updates the check
/// happens on the device: the tracker records the update numbers of skipped updates there and logs one warning
/// naming them the next time values are read (or when the tracker is reset, restored, disposed, or merged into
/// another tracker), so a tracker that is disposed without ever being read still logs them. The host overload <see cref="Update(double, long, long?, long?)"/> warns at once. The
/// "step" in a warning is the update's 1-based number in this tracker (<see cref="Updates"/> after that update),
/// which is the training step when you update once per step.
/// </para>
/// <para>
/// <b>Windowed view.</b> Besides the cumulative totals the tracker keeps the last <see cref="WindowSize"/>
/// updates; <see cref="WindowSnapshot"/> gives the same metrics over them, for training logs. The window is
/// local: <see cref="Merge"/> combines the cumulative totals only, and <see cref="Restore"/> starts it empty.
/// </para>
/// <para>
/// <b>All or nothing.</b> An update that throws (bad input, a tensor that cannot be read) changes nothing: every
/// value it needs is computed before any total, count or window slot is touched. The memory it holds is fixed by
/// the window size, however many updates go unread.
/// </para>
/// <para>Not thread-safe. Dispose it: it owns tensors, which are kept out of any <see cref="DisposeScope"/>.</para>
/// </remarks>
/// <example>
/// <code>
/// using var tracker = new PerplexityTracker(logger);
/// foreach (var (ids, mask) in batches)
/// {
///     using var scope = torch.NewDisposeScope();
///     using var result = lossFn.Compute(model.forward(ids), ids, mask);
///     result.Loss.backward();
///     tracker.Update(result);   // no device-to-host copy here
/// }
/// Console.WriteLine($"perplexity {tracker.Perplexity:F2}");
/// </code>
/// </example>
public sealed partial class PerplexityTracker : IDisposable
{
    /// <summary>The window length used when none is given: the last 100 updates.</summary>
    public const int DefaultWindowSize = 100;

    // Columns of the int64 count vectors.
    private const int TokensColumn = 0;
    private const int BytesColumn = 1;
    private const int WordsColumn = 2;
    private const int SkippedColumn = 3;
    private const int CountColumns = 4;
    // Skip records of updates not yet read back. Fixed, so a tracker that is never read holds a bounded buffer:
    // when it is full the records are read (one device sync per this many updates) and their warnings logged.
    private const int PendingCapacity = 1024;

    private readonly ILogger _logger;
    private readonly TrackerState _state = new();
    private readonly StateTensor _nllSum;   // float64 scalar: Σ NLL of kept updates
    private readonly StateTensor _counts;   // int64 [4]: Σ tokens, bytes, words of kept updates; number skipped
    private readonly RollingWindow _window;
    private readonly DeferredSkipWarnings _skipWarnings;
    private long _updates;
    private long _updatesWithBytes;
    private long _updatesWithWords;
    private PerplexitySnapshot? _cached;
    private PerplexitySnapshot? _cachedWindow;
    private bool _disposed;

    /// <summary>Creates an empty tracker.</summary>
    /// <param name="logger">Receives the warnings about skipped non-finite batches; none when null.</param>
    /// <param name="windowSize">How many recent updates <see cref="WindowSnapshot"/> covers; at least 1.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="windowSize"/> is below 1.</exception>
    public PerplexityTracker(ILogger? logger = null, int windowSize = DefaultWindowSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(windowSize, 1);
        TorchBackend.EnsureLoaded();
        _logger = logger ?? NullLogger.Instance;
        _nllSum = _state.Add(ScalarType.Float64);
        _counts = _state.Add(ScalarType.Int64, CountColumns);
        _window = new RollingWindow(windowSize, CountColumns, _state);
        _skipWarnings = new DeferredSkipWarnings(PendingCapacity, _state, _logger);
    }

    /// <summary>How many recent updates <see cref="WindowSnapshot"/> covers.</summary>
    public int WindowSize => _window.Size;

    /// <summary>Elements of the device buffer that holds unread skip records (for tests: it must not grow).</summary>
    internal long PendingSkipBufferLength => _skipWarnings.Capacity;

    /// <summary>Number of updates so far, skipped ones included (host-side; reading it never synchronises).</summary>
    public long Updates
    {
        get
        {
            ThrowIfDisposed();
            return _updates;
        }
    }

    /// <summary>Σ counted tokens over the kept updates.</summary>
    public long Tokens => Snapshot().Tokens;

    /// <summary>Mean negative log-likelihood per token in nats: Σ NLL / Σ tokens; NaN with zero tokens.</summary>
    public double MeanNll => Snapshot().MeanNll;

    /// <summary>exp(<see cref="MeanNll"/>): +∞ when that overflows (mean NLL above ~709.78 nats), NaN with zero tokens; never throws.</summary>
    public double Perplexity => Snapshot().Perplexity;

    /// <summary><see cref="MeanNll"/> in bits (÷ ln 2); NaN with zero tokens.</summary>
    public double BitsPerToken => Snapshot().BitsPerToken;

    /// <summary>
    /// Σ NLL / (ln 2 · Σ UTF-8 bytes), comparable across tokenizers; NaN unless every update reported its byte
    /// count (see <see cref="Update(LossResult, long?, long?)"/>).
    /// </summary>
    public double BitsPerByte => Snapshot().BitsPerByte;

    /// <summary>exp(Σ NLL / Σ words), comparable across tokenizers; NaN unless every update reported its word count.</summary>
    public double WordPerplexity => Snapshot().WordPerplexity;

    /// <summary>Updates left out of the totals because their NLL sum was NaN or ±∞.</summary>
    public long SkippedBatches => Snapshot().SkippedBatches;

    /// <summary>
    /// Folds in one loss evaluation: its unsmoothed <see cref="LossResult.NllSum"/> and <see cref="LossResult.TokenCount"/>
    /// (masked and ignored tokens are not in either), never the possibly smoothed <see cref="LossResult.Loss"/>.
    /// Runs on the result's device without reading values back; <paramref name="result"/> stays owned by the caller.
    /// </summary>
    /// <param name="result">A loss result from <see cref="TokenCrossEntropy"/> (causal or not) or <see cref="ChunkedLinearCrossEntropy"/>.</param>
    /// <param name="utf8Bytes">Optional UTF-8 byte count of the text these tokens encode, for <see cref="BitsPerByte"/>.</param>
    /// <param name="words">Optional whitespace-separated word count of that text, for <see cref="WordPerplexity"/>.</param>
    /// <exception cref="ArgumentException">The result's totals are not scalars, or a count is negative.</exception>
    public void Update(LossResult result, long? utf8Bytes = null, long? words = null)
    {
        ArgumentNullException.ThrowIfNull(result);
        Update(result.NllSum, result.TokenCount, utf8Bytes, words);
    }

    /// <summary>
    /// Folds in totals that are still tensors: <paramref name="nllSum"/> (Σ unsmoothed NLL in nats) over
    /// <paramref name="tokenCount"/> tokens, e.g. summed over a step's micro-batches on the device. Like
    /// <see cref="Update(LossResult, long?, long?)"/>, it reads nothing back; both tensors stay owned by the caller.
    /// </summary>
    /// <param name="nllSum">A one-element tensor: Σ unsmoothed NLL of the counted tokens.</param>
    /// <param name="tokenCount">A one-element tensor on the same device: the number of counted tokens.</param>
    /// <param name="utf8Bytes">Optional UTF-8 byte count of the text these tokens encode, for <see cref="BitsPerByte"/>.</param>
    /// <param name="words">Optional whitespace-separated word count of that text, for <see cref="WordPerplexity"/>.</param>
    /// <exception cref="ArgumentException">The totals are not one-element tensors on one device holding values, or a count is negative.</exception>
    public void Update(Tensor nllSum, Tensor tokenCount, long? utf8Bytes = null, long? words = null)
    {
        ArgumentNullException.ThrowIfNull(nllSum);
        ArgumentNullException.ThrowIfNull(tokenCount);
        CheckTextCounts(utf8Bytes, words);
        ThrowIfDisposed();
        if (nllSum.numel() != 1 || tokenCount.numel() != 1)
            throw new ArgumentException(
                $"The NLL sum and the token count must be scalars, got shapes [{string.Join(", ", nllSum.shape)}] and [{string.Join(", ", tokenCount.shape)}].",
                nameof(nllSum));
        var device = nllSum.device;
        if (device.type == DeviceType.META || tokenCount.device.type == DeviceType.META)
            throw new ArgumentException("The NLL sum and the token count must hold values; tensors on the meta device have none.", nameof(nllSum));
        if (tokenCount.device.type != device.type || tokenCount.device.index != device.index)
            throw new ArgumentException(
                $"The NLL sum and the token count must be on one device, got {device} and {tokenCount.device}.", nameof(tokenCount));
        _skipWarnings.MakeRoom();

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        _state.PinTo(device);   // moves the state, values unchanged: harmless if what follows throws
        var nll = nllSum.detach().reshape(Array.Empty<long>()).to(ScalarType.Float64, _state.Device);
        var tokens = tokenCount.reshape(Array.Empty<long>()).to(ScalarType.Int64, _state.Device);
        var finite = nll.isfinite();
        var kept = finite.to(ScalarType.Int64);
        var skipped = 1 - kept;
        var delta = stack([tokens * kept, kept * (utf8Bytes ?? 0), kept * (words ?? 0), skipped]);
        var keptNll = nll.masked_fill(finite.logical_not(), 0.0);
        var skippedStep = skipped * (_updates + 1);
        Fold(keptNll, delta, utf8Bytes, words);
        _skipWarnings.Record(skippedStep);
        Record(utf8Bytes, words);
    }

    /// <summary>
    /// Folds in totals computed elsewhere on the host: <paramref name="nllSum"/> nats over <paramref name="tokenCount"/>
    /// tokens. A NaN or ±∞ <paramref name="nllSum"/> is skipped, counted and logged at once.
    /// </summary>
    /// <param name="nllSum">Σ unsmoothed negative log-likelihood in nats; not negative.</param>
    /// <param name="tokenCount">Number of tokens it covers; not negative, and 0 only with a zero NLL sum.</param>
    /// <param name="utf8Bytes">Optional UTF-8 byte count of the text these tokens encode, for <see cref="BitsPerByte"/>.</param>
    /// <param name="words">Optional whitespace-separated word count of that text, for <see cref="WordPerplexity"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException">A value is negative, or there is NLL without tokens.</exception>
    public void Update(double nllSum, long tokenCount, long? utf8Bytes = null, long? words = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(tokenCount);
        CheckTextCounts(utf8Bytes, words);
        bool finite = double.IsFinite(nllSum);
        if (finite && nllSum < 0)
            throw new ArgumentOutOfRangeException(nameof(nllSum), nllSum, "A negative log-likelihood sum cannot be negative.");
        if (finite && tokenCount == 0 && nllSum != 0)
            throw new ArgumentOutOfRangeException(nameof(nllSum), nllSum, "An NLL sum over zero tokens must be 0.");
        ThrowIfDisposed();

        using var scope = NewDisposeScope();
        long[] delta = finite ? [tokenCount, utf8Bytes ?? 0, words ?? 0, 0] : [0, 0, 0, 1];
        var nllTensor = tensor(finite ? nllSum : 0.0, ScalarType.Float64, _state.Device);
        var deltaTensor = tensor(delta, device: _state.Device);
        Fold(nllTensor, deltaTensor, utf8Bytes, words);
        long step = Record(utf8Bytes, words);
        if (!finite) LogSkippedUpdate(_logger, step, nllSum);
    }

    /// <summary>
    /// Adds another tracker's cumulative totals to this one, e.g. from data-parallel workers or evaluation shards:
    /// computing after merging equals computing over the union of their updates. <paramref name="other"/> is unchanged
    /// (its pending skip warnings are logged first); it may live on another device. The window is not merged.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="other"/> is this tracker.</exception>
    public void Merge(PerplexityTracker other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (ReferenceEquals(other, this))
            throw new ArgumentException("A tracker cannot be merged into itself; that would count every update twice.", nameof(other));
        ThrowIfDisposed();
        other.ThrowIfDisposed();
        other._skipWarnings.Flush();
        _state.Merge(other._state);
        _updates += other._updates;
        _updatesWithBytes += other._updatesWithBytes;
        _updatesWithWords += other._updatesWithWords;
        _cached = null;
    }

    /// <summary>Clears all totals and the window (pending skip warnings are logged first); the device stays.</summary>
    public void Reset()
    {
        ThrowIfDisposed();
        _skipWarnings.Flush();
        _state.Reset();
        _window.Clear();
        _updates = 0;
        _updatesWithBytes = 0;
        _updatesWithWords = 0;
        _cached = null;
        _cachedWindow = null;
    }

    /// <summary>The cumulative totals as a serialisable value. Reads the device (once; cached until the next change).</summary>
    public PerplexitySnapshot Snapshot()
    {
        ThrowIfDisposed();
        _skipWarnings.Flush();
        if (_cached is null)
        {
            double nll = _nllSum.ReadDoubles()[0];
            long[] counts = _counts.ReadLongs();
            _cached = ToSnapshot(_updates, nll, counts, _updatesWithBytes == _updates, _updatesWithWords == _updates);
        }
        return _cached;
    }

    /// <summary>The same metrics over the last <see cref="WindowSize"/> updates only (fewer at the start). Reads the device.</summary>
    public PerplexitySnapshot WindowSnapshot()
    {
        ThrowIfDisposed();
        _skipWarnings.Flush();
        if (_cachedWindow is null)
        {
            var (nll, counts, allBytes, allWords) = _window.Totals();
            _cachedWindow = ToSnapshot(_window.Filled, nll, counts, allBytes, allWords);
        }
        return _cachedWindow;
    }

    /// <summary>
    /// Replaces the totals with <paramref name="snapshot"/>'s, e.g. when resuming from a checkpoint; later updates
    /// continue its step numbering. The window starts empty.
    /// </summary>
    /// <exception cref="ArgumentException">The snapshot's totals are impossible: negative counts, a negative or non-finite NLL sum, NLL without tokens, or totals without updates.</exception>
    public void Restore(PerplexitySnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        if (snapshot.Updates < 0 || snapshot.Tokens < 0 || snapshot.SkippedBatches < 0 || snapshot.Utf8Bytes < 0 || snapshot.Words < 0
            || snapshot.SkippedBatches > snapshot.Updates || !double.IsFinite(snapshot.NllSum) || snapshot.NllSum < 0
            || (snapshot.Tokens == 0 && snapshot.NllSum != 0)
            || (snapshot.Updates == 0 && (snapshot.Tokens != 0 || snapshot.Utf8Bytes is not null || snapshot.Words is not null)))
            throw new ArgumentException($"The snapshot is not a valid set of totals: {snapshot}.", nameof(snapshot));
        ThrowIfDisposed();
        _skipWarnings.Flush();
        _nllSum.Load([snapshot.NllSum]);
        _counts.Load([snapshot.Tokens, snapshot.Utf8Bytes ?? 0, snapshot.Words ?? 0, snapshot.SkippedBatches]);
        _window.Clear();
        _cachedWindow = null;
        _updates = snapshot.Updates;
        _updatesWithBytes = snapshot.Utf8Bytes is null ? 0 : snapshot.Updates;
        _updatesWithWords = snapshot.Words is null ? 0 : snapshot.Updates;
        _cached = null;
    }

    /// <summary>Logs any pending skip warnings and frees the tensors.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _skipWarnings.Flush();
        _disposed = true;
        _state.Dispose();
    }

    private static PerplexitySnapshot ToSnapshot(long updates, double nll, long[] counts, bool allBytes, bool allWords) =>
        new(updates, counts[TokensColumn], nll, counts[SkippedColumn],
            allBytes && updates > 0 ? counts[BytesColumn] : null,
            allWords && updates > 0 ? counts[WordsColumn] : null);

    private static void CheckTextCounts(long? utf8Bytes, long? words)
    {
        if (utf8Bytes < 0) throw new ArgumentOutOfRangeException(nameof(utf8Bytes), utf8Bytes, "A byte count cannot be negative.");
        if (words < 0) throw new ArgumentOutOfRangeException(nameof(words), words, "A word count cannot be negative.");
    }

    /// <summary>Counts the update on the host (the last thing an update does) and returns its 1-based step number.</summary>
    private long Record(long? utf8Bytes, long? words)
    {
        if (utf8Bytes is not null) _updatesWithBytes++;
        if (words is not null) _updatesWithWords++;
        _cached = null;
        _cachedWindow = null;
        return ++_updates;
    }

    /// <summary>Adds the next update's folded NLL (float64 scalar) and counts (int64 [4]) to the totals and the window.</summary>
    private void Fold(Tensor nll, Tensor delta, long? utf8Bytes, long? words)
    {
        _nllSum.Value.add_(nll);
        _counts.Value.add_(delta);
        _window.Add(nll, delta, utf8Bytes is not null, words is not null);
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    [LoggerMessage(EventId = 1, Level = LogLevel.Warning,
        Message = "Perplexity tracker skipped update {Step}: its NLL sum {NllSum} is not finite, so it is left out of the totals.")]
    private static partial void LogSkippedUpdate(ILogger logger, long step, double nllSum);
}
