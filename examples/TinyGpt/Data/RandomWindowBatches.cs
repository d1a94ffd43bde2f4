using static TorchSharp.torch;

namespace TinyGpt;

/// <summary>
/// Training batches of <c>batchSize</c> windows of <c>context</c> consecutive tokens, starting at uniformly random
/// offsets of a token stream (nanoGPT's <c>get_batch</c>). The order is fixed by the seed and saved in checkpoints.
/// </summary>
public sealed class RandomWindowBatches : IBatchSource, IDisposable
{
    private readonly Tensor tokens;
    private readonly Tensor offsets;
    private readonly SplitMix64 rng;
    private readonly int batchSize;
    private readonly long starts;

    /// <summary>Samples windows from <paramref name="tokens"/>.</summary>
    /// <exception cref="ArgumentException">The stream is shorter than one window, or a size is not positive.</exception>
    public RandomWindowBatches(IReadOnlyList<int> tokens, int batchSize, int context, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        if (batchSize < 1)
            throw new ArgumentException($"batchSize must be at least 1, got {batchSize}.", nameof(batchSize));
        if (context < 2)
            throw new ArgumentException($"context must be at least 2, got {context}.", nameof(context));
        if (tokens.Count < context)
            throw new ArgumentException($"The training split has {tokens.Count} tokens, fewer than one context window of {context}.", nameof(tokens));
        this.tokens = tensor(tokens.Select(t => (long)t).ToArray());
        offsets = arange(context, dtype: ScalarType.Int64);
        rng = new SplitMix64(seed);
        this.batchSize = batchSize;
        starts = tokens.Count - context + 1;
    }

    /// <inheritdoc />
    public TrainingBatch Next()
    {
        var start = new long[batchSize];
        for (int i = 0; i < batchSize; i++)
            start[i] = rng.NextInt64(starts);
        using var scope = NewDisposeScope();
        var ids = tokens.take(tensor(start).unsqueeze(1) + offsets).MoveToOuterDisposeScope();
        return new TrainingBatch(ids, ids);
    }

    /// <inheritdoc />
    public void SaveState(BinaryWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.Write(rng.State);
    }

    /// <inheritdoc />
    public void LoadState(BinaryReader reader)
    {
        ArgumentNullException.ThrowIfNull(reader);
        rng.State = reader.ReadUInt64();
    }

    /// <summary>Disposes the token tensor.</summary>
    public void Dispose()
    {
        tokens.Dispose();
        offsets.Dispose();
    }
}
