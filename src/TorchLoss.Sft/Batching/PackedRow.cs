namespace TorchLoss.Sft;

/// <summary>One row of packed examples from <see cref="SequencePacker"/>, padded to the row length.</summary>
/// <param name="InputIds">Token ids; padding holds the pad id.</param>
/// <param name="Labels">Unshifted labels; each document's first position, untrained tokens and padding hold <see cref="SftExample.IgnoreIndex"/>.</param>
/// <param name="PositionIds">Per token, its position within its own document (restarting at 0); padding counts on from 0 as a document of its own.</param>
/// <param name="DocumentIds">Per token, the index of its document within the row (0, 1, ...); padding is <see cref="PaddingDocument"/>.</param>
/// <param name="ExampleIndices">Which input examples the row holds, in row order.</param>
public sealed record PackedRow(int[] InputIds, long[] Labels, int[] PositionIds, int[] DocumentIds, IReadOnlyList<int> ExampleIndices)
{
    /// <summary>The document id of padding positions.</summary>
    public const int PaddingDocument = -1;

    /// <summary>The number of trained tokens in the row.</summary>
    public int TrainedTokenCount => Labels.Count(l => l != SftExample.IgnoreIndex);

    /// <summary>The number of padding positions.</summary>
    public int PaddingCount => DocumentIds.Count(d => d == PaddingDocument);
}
