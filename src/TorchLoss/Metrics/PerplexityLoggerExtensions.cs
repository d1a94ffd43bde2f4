using Microsoft.Extensions.Logging;

namespace TorchLoss.Metrics;

/// <summary>
/// Writes perplexity metrics through <see cref="ILogger"/> as structured messages: every number is a named field
/// (Step, Tokens, Loss, Perplexity, BitsPerToken, …), so console, JSON and other providers all receive it as data.
/// Loss is the mean unsmoothed NLL in nats per token.
/// </summary>
/// <example>
/// <code>
/// if (step % 50 == 0) logger.LogPerplexity(step, tracker);   // cumulative and windowed, one message
/// </code>
/// </example>
public static partial class PerplexityLoggerExtensions
{
    /// <summary>Logs one snapshot (cumulative or windowed) of a tracker.</summary>
    /// <param name="logger">Where to write.</param>
    /// <param name="step">The training step or evaluation shard the values belong to.</param>
    /// <param name="snapshot">The values, e.g. <see cref="PerplexityTracker.Snapshot"/>.</param>
    /// <param name="level">The log level; Information by default.</param>
    public static void LogPerplexity(this ILogger logger, long step, PerplexitySnapshot snapshot, LogLevel level = LogLevel.Information)
    {
        ArgumentNullException.ThrowIfNull(logger);
        ArgumentNullException.ThrowIfNull(snapshot);
        if (!logger.IsEnabled(level)) return;
        WriteSnapshot(logger, level, step, snapshot.Tokens, snapshot.MeanNll, snapshot.Perplexity, snapshot.BitsPerToken, snapshot.SkippedBatches);
    }

    /// <summary>
    /// Logs a tracker's cumulative totals and its window (the last <see cref="PerplexityTracker.WindowSize"/> updates)
    /// as one message. Reads the tracker's device once, and only when the level is enabled.
    /// </summary>
    /// <param name="logger">Where to write.</param>
    /// <param name="step">The training step the values belong to.</param>
    /// <param name="tracker">The tracker to read.</param>
    /// <param name="level">The log level; Information by default.</param>
    public static void LogPerplexity(this ILogger logger, long step, PerplexityTracker tracker, LogLevel level = LogLevel.Information)
    {
        ArgumentNullException.ThrowIfNull(logger);
        ArgumentNullException.ThrowIfNull(tracker);
        if (!logger.IsEnabled(level)) return;
        var total = tracker.Snapshot();
        var window = tracker.WindowSnapshot();
        WriteTracker(logger, level, step, total.Tokens, total.MeanNll, total.Perplexity, total.BitsPerToken,
            window.Updates, window.MeanNll, window.Perplexity, total.SkippedBatches);
    }

    [LoggerMessage(EventId = 100,
        Message = "Step {Step}: {Tokens} tokens, loss {Loss:F4} nats/token, perplexity {Perplexity:F3}, {BitsPerToken:F4} bits/token, {SkippedBatches} skipped batches")]
    private static partial void WriteSnapshot(ILogger logger, LogLevel level, long step, long tokens, double loss, double perplexity, double bitsPerToken, long skippedBatches);

    [LoggerMessage(EventId = 101,
        Message = "Step {Step}: {Tokens} tokens, loss {Loss:F4} nats/token, perplexity {Perplexity:F3}, {BitsPerToken:F4} bits/token; "
            + "last {WindowUpdates} updates: loss {WindowLoss:F4}, perplexity {WindowPerplexity:F3}; {SkippedBatches} skipped batches")]
    private static partial void WriteTracker(ILogger logger, LogLevel level, long step, long tokens, double loss, double perplexity, double bitsPerToken,
        long windowUpdates, double windowLoss, double windowPerplexity, long skippedBatches);
}
