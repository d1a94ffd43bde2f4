using System.Text.Json.Serialization;

namespace TorchLoss.Metrics;

/// <summary>
/// The running totals of a <see cref="PerplexityTracker"/> at one moment, as plain values: log them, compare
/// them, or serialise them (e.g. with System.Text.Json) into a checkpoint and hand them to
/// <see cref="PerplexityTracker.Restore"/> to resume without losing the totals. Only the totals are stored;
/// every metric is derived from them, so a restored run computes exactly what an uninterrupted one would.
/// </summary>
/// <param name="Updates">Number of updates folded in, skipped ones included.</param>
/// <param name="Tokens">Σ counted tokens over the kept updates.</param>
/// <param name="NllSum">Σ unsmoothed negative log-likelihood over the kept updates, in nats.</param>
/// <param name="SkippedBatches">Updates whose NLL sum was NaN or ±∞ and were therefore left out of the totals.</param>
/// <param name="Utf8Bytes">Σ UTF-8 bytes of the scored text over the kept updates; null unless every update reported it.</param>
/// <param name="Words">Σ whitespace-separated words of the scored text over the kept updates; null unless every update reported it.</param>
public sealed record PerplexitySnapshot(long Updates, long Tokens, double NllSum, long SkippedBatches, long? Utf8Bytes = null, long? Words = null)
{
    /// <summary>An empty snapshot: nothing seen yet.</summary>
    public static PerplexitySnapshot Empty { get; } = new(0, 0, 0.0, 0);

    /// <summary>Mean negative log-likelihood per token, in nats (the cross-entropy); NaN with zero tokens.</summary>
    [JsonIgnore]
    public double MeanNll => NllSum / Tokens;

    /// <summary>exp(<see cref="MeanNll"/>): +∞ when it overflows a double (mean NLL above ~709.78), NaN with zero tokens.</summary>
    [JsonIgnore]
    public double Perplexity => Math.Exp(MeanNll);

    /// <summary>Mean NLL per token in bits: <see cref="MeanNll"/> / ln 2; NaN with zero tokens.</summary>
    [JsonIgnore]
    public double BitsPerToken => MeanNll / Math.Log(2);

    /// <summary>
    /// Σ NLL / (ln 2 · Σ UTF-8 bytes), lm-evaluation-harness's bits_per_byte: comparable across tokenizers.
    /// NaN when not every update reported its byte count, or with zero bytes.
    /// </summary>
    [JsonIgnore]
    public double BitsPerByte => Utf8Bytes is { } bytes && bytes > 0 ? NllSum / (Math.Log(2) * bytes) : double.NaN;

    /// <summary>
    /// exp(Σ NLL / Σ words), lm-evaluation-harness's word_perplexity: comparable across tokenizers.
    /// NaN when not every update reported its word count, or with zero words; +∞ on overflow.
    /// </summary>
    [JsonIgnore]
    public double WordPerplexity => Words is { } words && words > 0 ? Math.Exp(NllSum / words) : double.NaN;
}
