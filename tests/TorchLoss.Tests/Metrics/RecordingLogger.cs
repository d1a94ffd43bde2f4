using Microsoft.Extensions.Logging;

namespace TorchLoss.Tests.Metrics;

/// <summary>An <see cref="ILogger"/> that keeps every entry, with its structured state, for assertions.</summary>
public sealed class RecordingLogger : ILogger
{
    public List<Entry> Entries { get; } = [];

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        var fields = state is IEnumerable<KeyValuePair<string, object?>> pairs
            ? pairs.ToDictionary(p => p.Key, p => p.Value)
            : new Dictionary<string, object?>();
        Entries.Add(new Entry(logLevel, formatter(state, exception), fields));
    }

    public sealed record Entry(LogLevel Level, string Message, IReadOnlyDictionary<string, object?> Fields);
}
