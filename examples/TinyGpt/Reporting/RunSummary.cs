using System.Text.Json;
using System.Text.Json.Serialization;

namespace TinyGpt;

/// <summary>
/// The end-of-run numbers every example writes to <c>summary.json</c>: validation loss in nats per token on the
/// whole validation split, its perplexity, training time, steps and throughput, plus example-specific extras.
/// </summary>
public sealed record RunSummary
{
    /// <summary>Mean NLL per token on the whole validation split (nats).</summary>
    [JsonPropertyName("val_loss")]
    public required double ValLoss { get; init; }

    /// <summary>exp(<see cref="ValLoss"/>).</summary>
    [JsonPropertyName("val_ppl")]
    public required double ValPerplexity { get; init; }

    /// <summary>Wall time of the optimiser steps in seconds (validation passes, start-up and sampling excluded).</summary>
    [JsonPropertyName("train_seconds")]
    public required double TrainSeconds { get; init; }

    /// <summary>Wall time of the validation passes in seconds (every evaluation of the run, the final one included).</summary>
    [JsonPropertyName("eval_seconds")]
    public required double EvalSeconds { get; init; }

    /// <summary>Optimiser steps done.</summary>
    [JsonPropertyName("steps")]
    public required int Steps { get; init; }

    /// <summary>Training tokens per second of <see cref="TrainSeconds"/>.</summary>
    [JsonPropertyName("tokens_per_second")]
    public required double TokensPerSecond { get; init; }

    /// <summary>Example-specific numbers (e.g. the entropy floor), written as further top-level fields.</summary>
    [JsonExtensionData]
    public Dictionary<string, object?> Extra { get; init; } = [];

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    /// <summary>The summary as indented JSON.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>Writes <c>summary.json</c> into <paramref name="directory"/> atomically and returns its path.</summary>
    public string WriteTo(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        Directory.CreateDirectory(directory);
        string path = Path.Combine(directory, "summary.json");
        AtomicFile.WriteAllText(path, ToJson() + Environment.NewLine);
        return path;
    }

    /// <summary>Reads a summary written by <see cref="WriteTo"/>.</summary>
    public static RunSummary Read(string path) =>
        JsonSerializer.Deserialize<RunSummary>(File.ReadAllText(path), Json) ?? throw new InvalidDataException($"{path} holds no summary.");
}
