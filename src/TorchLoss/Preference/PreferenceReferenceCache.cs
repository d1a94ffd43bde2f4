using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss;

/// <summary>
/// The reference model's log-probabilities of every pair of a data set, computed once in a no-grad pass and kept on the
/// host, so the reference model can be freed before training: each step reads its batch's pairs with <see cref="Select"/>.
/// Pairs are numbered in the order the batches give them (batch 0's pairs first).
/// </summary>
/// <remarks>
/// A cached value equals what <see cref="PreferenceReference.FromLogits(Tensor, Tensor, Tensor?, long, CrossEntropyBackend)"/>
/// gives for the same sequences, as long as the model gives the same logits for a sequence in any batch (true of a causal
/// model fed its attention mask, up to float rounding). <see cref="PreferenceLoss"/> compares every cached token count with
/// the policy's, so a cache read in another order or built with another truncation is caught at the row that differs.
/// </remarks>
/// <example>
/// <code>
/// var cache = PreferenceReferenceCache.Compute(collator.Batches(pairs, 16), batch =>
///     PreferenceReference.FromLogits(referenceModel.forward(batch.InputIds), batch.Labels, batch.CompletionMask));
/// referenceModel.Dispose();
/// // each step, for the pairs at `indices`:
/// using var reference = cache.Select(indices);
/// </code>
/// </example>
public sealed class PreferenceReferenceCache
{
    private readonly double[] chosenSum, rejectedSum;
    private readonly long[] chosenCount, rejectedCount;

    private PreferenceReferenceCache(double[] chosenSum, long[] chosenCount, double[] rejectedSum, long[] rejectedCount)
    {
        this.chosenSum = chosenSum;
        this.chosenCount = chosenCount;
        this.rejectedSum = rejectedSum;
        this.rejectedCount = rejectedCount;
    }

    /// <summary>The number of cached pairs.</summary>
    public int PairCount => chosenSum.Length;

    /// <summary>
    /// Runs <paramref name="reference"/> on every batch under <c>no_grad</c>, each in its own dispose scope (tensors the
    /// enumeration or the delegate creates are freed after each batch), and keeps the values.
    /// </summary>
    /// <param name="batches">The data, in the order that numbers the pairs; typically <c>PreferenceCollator.Batches</c>.</param>
    /// <param name="reference">The reference model's log-probabilities of one batch's pairs, e.g. <see cref="PreferenceReference.FromLogits(Tensor, Tensor, Tensor?, long, CrossEntropyBackend)"/> of its logits.</param>
    /// <exception cref="ArgumentException">There are no batches, or the delegate returns null.</exception>
    public static PreferenceReferenceCache Compute<TBatch>(IEnumerable<TBatch> batches, Func<TBatch, PreferenceReference> reference)
    {
        ArgumentNullException.ThrowIfNull(batches);
        ArgumentNullException.ThrowIfNull(reference);
        TorchBackend.EnsureLoaded();
        var chosenSum = new List<double>();
        var rejectedSum = new List<double>();
        var chosenCount = new List<long>();
        var rejectedCount = new List<long>();
        using var batch = batches.GetEnumerator();
        for (int index = 0; ; index++)
        {
            using var scope = NewDisposeScope();
            if (!batch.MoveNext()) break;
            using var noGrad = no_grad();
            var values = reference(batch.Current)
                ?? throw new ArgumentException($"The reference delegate returned null for batch {index}.", nameof(reference));
            Append(values.Chosen, chosenSum, chosenCount);
            Append(values.Rejected, rejectedSum, rejectedCount);
        }
        if (chosenSum.Count == 0)
            throw new ArgumentException("There are no batches to compute the reference log-probabilities of.", nameof(batches));
        return new PreferenceReferenceCache([.. chosenSum], [.. chosenCount], [.. rejectedSum], [.. rejectedCount]);
    }

    /// <summary>The reference of the pairs at <paramref name="pairIndices"/>, in that order (a training batch of shuffled pairs); float64 on the CPU.</summary>
    /// <exception cref="ArgumentException">The list is empty or an index is outside [0, <see cref="PairCount"/>).</exception>
    public PreferenceReference Select(IReadOnlyList<int> pairIndices)
    {
        ArgumentNullException.ThrowIfNull(pairIndices);
        if (pairIndices.Count == 0)
            throw new ArgumentException("Select needs at least one pair index.", nameof(pairIndices));
        int bad = pairIndices.ToList().FindIndex(i => i < 0 || i >= PairCount);
        if (bad >= 0)
            throw new ArgumentException($"Pair index {pairIndices[bad]} (entry {bad}) is outside the cache's {PairCount} pairs.", nameof(pairIndices));
        using var scope = NewDisposeScope();
        double[] Sums(double[] all) => pairIndices.Select(i => all[i]).ToArray();
        long[] Counts(long[] all) => pairIndices.Select(i => all[i]).ToArray();
        return PreferenceReference.FromValues(
            tensor(Sums(chosenSum)), tensor(Counts(chosenCount)),
            tensor(Sums(rejectedSum)), tensor(Counts(rejectedCount))).MoveToOuterDisposeScope();
    }

    /// <summary>The reference of the <paramref name="count"/> pairs from <paramref name="start"/> on (a batch of unshuffled pairs).</summary>
    /// <exception cref="ArgumentException">The range is empty or reaches outside the cache.</exception>
    public PreferenceReference Slice(int start, int count)
    {
        if (start < 0 || count < 1 || start > PairCount - count)
            throw new ArgumentException($"Pairs [{start}, {(long)start + count}) are not a non-empty range of the cache's {PairCount} pairs.", nameof(count));
        return Select(Enumerable.Range(start, count).ToArray());
    }

    private static void Append(SequenceLogProbs values, List<double> sums, List<long> counts)
    {
        sums.AddRange(values.Sum.detach().to(ScalarType.Float64, CPU).data<double>().ToArray());
        counts.AddRange(values.TokenCount.to(ScalarType.Int64, CPU).data<long>().ToArray());
    }
}
