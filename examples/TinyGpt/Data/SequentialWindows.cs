using static TorchSharp.torch;

namespace TinyGpt;

/// <summary>
/// Covers a whole token stream with windows of <c>context</c> tokens that overlap by exactly one token, so that
/// every token after the first is predicted exactly once: the token-weighted loss over these batches is the
/// model's cross-entropy on the whole split (each window restarts with no earlier context).
/// </summary>
public static class SequentialWindows
{
    /// <summary>Number of tokens the windows score: every token but the first.</summary>
    public static long ScoredTokens(IReadOnlyList<int> tokens) => Math.Max(0, tokens.Count - 1);

    /// <summary>The windows of <paramref name="tokens"/>, <paramref name="batchSize"/> at a time; a shorter last window comes alone.</summary>
    /// <exception cref="ArgumentException">Fewer than 2 tokens, or a size is not positive.</exception>
    public static IEnumerable<TrainingBatch> Batches(IReadOnlyList<int> tokens, int context, int batchSize)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        if (context < 2)
            throw new ArgumentException($"context must be at least 2, got {context}.", nameof(context));
        if (batchSize < 1)
            throw new ArgumentException($"batchSize must be at least 1, got {batchSize}.", nameof(batchSize));
        if (tokens.Count < 2)
            throw new ArgumentException($"A split needs at least 2 tokens to score one prediction, got {tokens.Count}.", nameof(tokens));
        return Enumerate(tokens.Select(t => (long)t).ToArray(), context, batchSize);
    }

    private static IEnumerable<TrainingBatch> Enumerate(long[] data, int context, int batchSize)
    {
        int stride = context - 1;
        var fullStarts = new List<long>();
        long s = 0;
        for (; s + context <= data.Length; s += stride)
            fullStarts.Add(s);
        for (int i = 0; i < fullStarts.Count; i += batchSize)
        {
            int rows = Math.Min(batchSize, fullStarts.Count - i);
            var ids = new long[rows * context];
            for (int r = 0; r < rows; r++)
                Array.Copy(data, fullStarts[i + r], ids, r * context, context);
            var batch = tensor(ids, [rows, context]);
            yield return new TrainingBatch(batch, batch);
        }
        if (s < data.Length - 1)
        {
            var rest = data[(int)s..];
            var batch = tensor(rest, [1, rest.Length]);
            yield return new TrainingBatch(batch, batch);
        }
    }
}
