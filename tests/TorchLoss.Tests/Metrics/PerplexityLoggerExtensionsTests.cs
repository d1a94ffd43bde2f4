using Microsoft.Extensions.Logging;
using TorchLoss.Metrics;

namespace TorchLoss.Tests.Metrics;

public class PerplexityLoggerExtensionsTests
{
    [Fact]
    public void SnapshotIsLoggedAsStructuredFields()
    {
        var logger = new RecordingLogger();
        var snapshot = new PerplexitySnapshot(3, 8, 8 * Math.Log(4), 0);

        logger.LogPerplexity(42, snapshot);

        var entry = Assert.Single(logger.Entries);
        Assert.Equal(LogLevel.Information, entry.Level);
        Assert.Equal(42L, entry.Fields["Step"]);
        Assert.Equal(8L, entry.Fields["Tokens"]);
        Assert.Equal(Math.Log(4), (double)entry.Fields["Loss"]!, 12);
        Assert.Equal(4.0, (double)entry.Fields["Perplexity"]!, 12);
        Assert.Equal(2.0, (double)entry.Fields["BitsPerToken"]!, 12);
        Assert.Contains("Step 42", entry.Message);
        Assert.Equal("Step 42: 8 tokens, loss 1.3863 nats/token, perplexity 4.000, 2.0000 bits/token, 0 skipped batches", entry.Message);
    }

    [Fact]
    public void TrackerIsLoggedWithItsWindow()
    {
        var logger = new RecordingLogger();
        using var tracker = new PerplexityTracker(windowSize: 1);
        tracker.Update(2 * Math.Log(10), 2);
        tracker.Update(2 * Math.Log(2), 2, utf8Bytes: 8);

        logger.LogPerplexity(7, tracker, LogLevel.Debug);

        var entry = Assert.Single(logger.Entries);
        Assert.Equal(LogLevel.Debug, entry.Level);
        Assert.Equal(4L, entry.Fields["Tokens"]);
        Assert.Equal(Math.Sqrt(20), (double)entry.Fields["Perplexity"]!, 12);
        Assert.Equal(1L, entry.Fields["WindowUpdates"]);
        Assert.Equal(2.0, (double)entry.Fields["WindowPerplexity"]!, 12);
    }

    [Fact]
    public void DisabledLevelWritesNothing()
    {
        var logger = new LevelLogger(LogLevel.Warning);
        using var tracker = new PerplexityTracker();
        tracker.Update(1.0, 1);
        logger.LogPerplexity(1, tracker);
        Assert.Equal(0, logger.Logged);
    }

    private sealed class LevelLogger(LogLevel minimum) : ILogger
    {
        public int Logged { get; private set; }
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => logLevel >= minimum;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) => Logged++;
    }
}
