using Microsoft.Extensions.Logging;
using static TorchSharp.torch;

namespace TorchLoss.Metrics;

/// <summary>
/// Warnings about skipped updates whose "was it finite?" answer is still on the device: each update writes its step
/// number (0 when it was kept) into a fixed buffer without a host read, and <see cref="Flush"/> reads the buffer once
/// and logs one warning naming the skipped steps. The buffer is a local tensor of the tracker's <see cref="TrackerState"/>
/// and never grows: when it is full, <see cref="MakeRoom"/> flushes it (one device read per <see cref="Capacity"/> updates).
/// </summary>
internal sealed partial class DeferredSkipWarnings
{
    private const int MaxStepsListed = 20;
    private readonly StateTensor _steps;   // int64 [capacity]: per unread update, its step if skipped, else 0
    private readonly ILogger _logger;
    private int _pending;

    /// <summary>Declares a buffer of <paramref name="capacity"/> records in <paramref name="state"/>; warnings go to <paramref name="logger"/>.</summary>
    public DeferredSkipWarnings(int capacity, TrackerState state, ILogger logger)
    {
        _steps = state.Local(ScalarType.Int64, capacity);
        _logger = logger;
    }

    /// <summary>Records the buffer can hold.</summary>
    public int Capacity => (int)_steps.Value.shape[0];

    /// <summary>Flushes when the buffer is full, so that <see cref="Record"/> has a free slot. Call it before any other change.</summary>
    public void MakeRoom()
    {
        if (_pending == Capacity) Flush();
    }

    /// <summary>Records one update: <paramref name="skippedStep"/> (int64 scalar on the state's device) is its step if it was skipped, else 0.</summary>
    public void Record(Tensor skippedStep)
    {
        using (var scope = NewDisposeScope())
            _steps.Value[_pending].copy_(skippedStep);
        _pending++;
    }

    /// <summary>Reads the pending records (one device read) and logs the steps of the skipped updates, if any.</summary>
    public void Flush()
    {
        if (_pending == 0) return;
        long[] steps;
        using (var scope = NewDisposeScope())
        {
            var pending = _steps.Value[TensorIndex.Slice(0, _pending)];
            steps = pending.masked_select(pending.ne(0)).cpu().data<long>().ToArray();
        }
        _pending = 0;
        if (steps.Length == 0) return;
        string listed = string.Join(", ", steps.Take(MaxStepsListed)) + (steps.Length > MaxStepsListed ? ", …" : "");
        LogSkippedUpdates(_logger, steps.Length, listed);
    }

    [LoggerMessage(EventId = 2, Level = LogLevel.Warning,
        Message = "Perplexity tracker skipped {Count} update(s) whose NLL sum was not finite, at step(s) {Steps}; they are left out of the totals.")]
    private static partial void LogSkippedUpdates(ILogger logger, int count, string steps);
}
