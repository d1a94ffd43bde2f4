using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss.Sft;

/// <summary>
/// Pads <see cref="PreferencePair"/>s into a <see cref="PreferenceBatch"/>: the chosen sides, then the rejected sides,
/// all to one length (the concatenated layout of <see cref="PreferenceLoss"/>), padded on the right or the left. Padding
/// gets the pad id, <see cref="SftExample.IgnoreIndex"/> in the labels and false in both masks.
/// </summary>
public sealed class PreferenceCollator
{
    private readonly SftCollator rightPadded;

    /// <summary>Creates a collator.</summary>
    /// <param name="padTokenId">The id written into padding positions (any valid id: padding is never scored).</param>
    /// <param name="padding">Which side of a shorter row the padding goes.</param>
    /// <param name="padToMultipleOf">Rounds the batch length up to a multiple of this (1 = the longest side).</param>
    /// <exception cref="ArgumentOutOfRangeException">The pad id is negative, the multiple is less than 1, or the side is unknown.</exception>
    public PreferenceCollator(int padTokenId, PaddingSide padding = PaddingSide.Right, int padToMultipleOf = 1)
    {
        if (!Enum.IsDefined(padding))
            throw new ArgumentOutOfRangeException(nameof(padding), padding, "Padding side must be Right or Left.");
        rightPadded = new SftCollator(padTokenId, padToMultipleOf);
        Padding = padding;
    }

    /// <summary>The id written into padding positions.</summary>
    public int PadTokenId => rightPadded.PadTokenId;

    /// <summary>Which side the padding goes.</summary>
    public PaddingSide Padding { get; }

    /// <summary>The batch length is a multiple of this.</summary>
    public int PadToMultipleOf => rightPadded.PadToMultipleOf;

    /// <summary>Pads the pairs into one batch: rows [0, B) the chosen sides, rows [B, 2B) the rejected sides.</summary>
    /// <param name="pairs">At least one pair.</param>
    /// <param name="device">Where the tensors go; the CPU when null.</param>
    /// <exception cref="ArgumentException">The list is empty or holds a null.</exception>
    public PreferenceBatch Collate(IReadOnlyList<PreferencePair> pairs, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        if (pairs.Count == 0)
            throw new ArgumentException("Cannot collate an empty list of pairs.", nameof(pairs));
        int nullAt = pairs.ToList().FindIndex(p => p is null);
        if (nullAt >= 0)
            throw new ArgumentException($"Pair {nullAt} is null.", nameof(pairs));

        using var scope = NewDisposeScope();
        using var sides = rightPadded.Collate([.. pairs.Select(p => p.Chosen), .. pairs.Select(p => p.Rejected)]);
        var (ids, labels, attention) = Padding == PaddingSide.Left
            ? (ToLeft(sides.InputIds, sides.AttentionMask), ToLeft(sides.Labels, sides.AttentionMask), ToLeft(sides.AttentionMask, sides.AttentionMask))
            : (sides.InputIds.alias(), sides.Labels.alias(), sides.AttentionMask.alias());
        var positions = (attention.cumsum(1, ScalarType.Int64) - 1).clamp_min(0);
        var batch = new PreferenceBatch(
            SftCollator.ToDevice(ids, device),
            SftCollator.ToDevice(labels, device),
            SftCollator.ToDevice(labels.ne(SftExample.IgnoreIndex), device),
            SftCollator.ToDevice(attention, device),
            SftCollator.ToDevice(positions, device),
            pairs.Count);
        return batch.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Collates <paramref name="pairs"/> in order, <paramref name="batchSize"/> at a time (the last batch may be smaller):
    /// pair i of the list is pair i mod <paramref name="batchSize"/> of batch i / <paramref name="batchSize"/>, the order
    /// <see cref="PreferenceReferenceCache.Compute{TBatch}"/> numbers them in. Each batch is made when it is enumerated.
    /// </summary>
    /// <exception cref="ArgumentException">The list is empty or holds a null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The batch size is less than 1.</exception>
    public IEnumerable<PreferenceBatch> Batches(IReadOnlyList<PreferencePair> pairs, int batchSize, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        if (pairs.Count == 0)
            throw new ArgumentException("Cannot collate an empty list of pairs.", nameof(pairs));
        return Enumerate();

        IEnumerable<PreferenceBatch> Enumerate()
        {
            for (int start = 0; start < pairs.Count; start += batchSize)
                yield return Collate(pairs.Skip(start).Take(batchSize).ToList(), device);
        }
    }

    /// <summary>Moves each right-padded row's padding to its front: row b is rolled right by its padding length.</summary>
    private static Tensor ToLeft(Tensor rightPadded, Tensor attention)
    {
        long length = rightPadded.shape[1];
        var padding = length - attention.sum(1, type: ScalarType.Int64);
        var source = (arange(length, ScalarType.Int64).unsqueeze(0) - padding.unsqueeze(1)).remainder(length);
        return rightPadded.gather(1, source);
    }
}
