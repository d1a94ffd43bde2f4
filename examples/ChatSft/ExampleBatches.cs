using TinyGpt;
using TorchLoss.Sft;

namespace ChatSft;

/// <summary>
/// Endless random micro-batches of <see cref="SftExample"/>s, padded by <see cref="SftCollator"/>. The draw
/// order depends only on the seed, so two runs over examples that differ only in their labels see the same
/// conversations in the same order.
/// </summary>
public sealed class ExampleBatches : IBatchSource
{
    private readonly IReadOnlyList<SftExample> examples;
    private readonly SftCollator collator;
    private readonly int batchSize;
    private readonly SplitMix64 random;

    /// <summary>Creates the source.</summary>
    public ExampleBatches(IReadOnlyList<SftExample> examples, int batchSize, int padTokenId, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(examples);
        if (examples.Count == 0)
            throw new ArgumentException("There are no examples to draw batches from.", nameof(examples));
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        this.examples = examples;
        this.batchSize = batchSize;
        collator = new SftCollator(padTokenId);
        random = new SplitMix64(seed);
    }

    /// <inheritdoc />
    public TrainingBatch Next()
    {
        var picked = new SftExample[batchSize];
        for (int i = 0; i < batchSize; i++)
            picked[i] = examples[(int)random.NextInt64(examples.Count)];
        return ToTrainingBatch(collator.Collate(picked));
    }

    /// <summary>Every example once, in order, in batches of <paramref name="batchSize"/>.</summary>
    public static IEnumerable<TrainingBatch> InOrder(IReadOnlyList<SftExample> examples, int batchSize, int padTokenId)
    {
        var collator = new SftCollator(padTokenId);
        for (int start = 0; start < examples.Count; start += batchSize)
            yield return ToTrainingBatch(collator.Collate(examples.Skip(start).Take(batchSize).ToList()));
    }

    /// <inheritdoc />
    public void SaveState(BinaryWriter writer) => writer.Write(random.State);

    /// <inheritdoc />
    public void LoadState(BinaryReader reader) => random.State = reader.ReadUInt64();

    // Right padding under a causal mask never changes what real tokens see, so the padding mask is not needed.
    private static TrainingBatch ToTrainingBatch(SftBatch batch)
    {
        batch.AttentionMask.Dispose();
        return new TrainingBatch(batch.InputIds, batch.Labels);
    }
}
