using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss.Sft;

/// <summary>
/// Packs <see cref="SftExample"/>s into rows of a fixed length with little padding (best-fit decreasing:
/// longest first, each into the fullest row that still has room). Every document keeps its own positions
/// (restarting at 0) and document id, and the label at each document's first position is ignored, so with
/// <see cref="BlockDiagonalCausalMask"/> no token attends to, or is predicted from, another document.
/// </summary>
/// <example>
/// <code>
/// var packer = new SequencePacker(rowLength: 512, padTokenId: 0);
/// using var batch = packer.ToBatch(packer.Pack(examples));
/// using var mask = SequencePacker.BlockDiagonalCausalMask(batch.DocumentIds);   // [B, 1, L, L]
/// </code>
/// </example>
public sealed class SequencePacker
{
    /// <summary>Creates a packer.</summary>
    /// <param name="rowLength">The length of every packed row (at least 2).</param>
    /// <param name="padTokenId">The id written into padding positions.</param>
    /// <exception cref="ArgumentOutOfRangeException">The row length is below 2 or the pad id is negative.</exception>
    public SequencePacker(int rowLength, int padTokenId)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(rowLength, 2);
        ArgumentOutOfRangeException.ThrowIfNegative(padTokenId);
        RowLength = rowLength;
        PadTokenId = padTokenId;
    }

    /// <summary>The length of every packed row.</summary>
    public int RowLength { get; }

    /// <summary>The id written into padding positions.</summary>
    public int PadTokenId { get; }

    /// <summary>Packs the examples into rows; every example lands in exactly one row, whole.</summary>
    /// <exception cref="ArgumentException">An example is null or longer than <see cref="RowLength"/>.</exception>
    public IReadOnlyList<PackedRow> Pack(IReadOnlyList<SftExample> examples)
    {
        ArgumentNullException.ThrowIfNull(examples);
        for (int i = 0; i < examples.Count; i++)
        {
            if (examples[i] is null)
                throw new ArgumentException($"Example {i} is null.", nameof(examples));
            if (examples[i].Length > RowLength)
                throw new ArgumentException(
                    $"Example {i} has {examples[i].Length} tokens, more than the row length {RowLength}; build examples with SftOptions.MaxLength <= {RowLength}.", nameof(examples));
        }

        var order = Enumerable.Range(0, examples.Count).OrderByDescending(i => examples[i].Length).ThenBy(i => i);
        var bins = new List<(List<int> Members, int Free)>();
        foreach (int index in order)
        {
            int length = examples[index].Length;
            int best = -1;
            for (int b = 0; b < bins.Count; b++)
                if (bins[b].Free >= length && (best < 0 || bins[b].Free < bins[best].Free))
                    best = b;
            if (best < 0)
            {
                bins.Add(([], RowLength));
                best = bins.Count - 1;
            }
            bins[best].Members.Add(index);
            bins[best] = (bins[best].Members, bins[best].Free - length);
        }
        return bins.Select(bin => Row(examples, bin.Members)).ToList();
    }

    /// <summary>Stacks packed rows into tensors.</summary>
    /// <param name="rows">Rows from <see cref="Pack"/> (all of length <see cref="RowLength"/>).</param>
    /// <param name="device">Where the tensors go; the CPU when null.</param>
    /// <exception cref="ArgumentException">There are no rows, or a row has the wrong length.</exception>
    public PackedBatch ToBatch(IReadOnlyList<PackedRow> rows, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(rows);
        if (rows.Count == 0)
            throw new ArgumentException("Cannot make a batch of no rows.", nameof(rows));
        int bad = rows.ToList().FindIndex(r => r is null || r.InputIds.Length != RowLength);
        if (bad >= 0)
            throw new ArgumentException($"Row {bad} is null or not {RowLength} tokens long.", nameof(rows));
        TorchBackend.EnsureLoaded();
        long[] Flat(Func<PackedRow, IEnumerable<long>> pick) => rows.SelectMany(pick).ToArray();
        long[] shape = [rows.Count, RowLength];
        return new PackedBatch(
            SftCollator.ToDevice(tensor(Flat(r => r.InputIds.Select(x => (long)x)), shape, ScalarType.Int64), device),
            SftCollator.ToDevice(tensor(Flat(r => r.Labels), shape, ScalarType.Int64), device),
            SftCollator.ToDevice(tensor(Flat(r => r.PositionIds.Select(x => (long)x)), shape, ScalarType.Int64), device),
            SftCollator.ToDevice(tensor(Flat(r => r.DocumentIds.Select(x => (long)x)), shape, ScalarType.Int64), device),
            rows.Sum(r => (long)r.TrainedTokenCount));
    }

    /// <summary>
    /// The attention mask of packed rows: <c>mask[b, 0, q, k]</c> is true when query q may attend to key k,
    /// that is when both are in the same document and k ≤ q. The shape [B, 1, L, L] broadcasts over heads in
    /// <c>scaled_dot_product_attention</c>. Padding attends causally to padding only, so no query row is all
    /// false (which would make softmax return NaN).
    /// </summary>
    /// <param name="documentIds">[B, L] integer document ids, as in <see cref="PackedBatch.DocumentIds"/>.</param>
    /// <exception cref="ArgumentException"><paramref name="documentIds"/> is not a 2-D integer tensor.</exception>
    public static Tensor BlockDiagonalCausalMask(Tensor documentIds)
    {
        ArgumentNullException.ThrowIfNull(documentIds);
        if (documentIds.dim() != 2 || documentIds.dtype is not (ScalarType.Int64 or ScalarType.Int32 or ScalarType.Int16 or ScalarType.Int8 or ScalarType.Byte))
            throw new ArgumentException($"documentIds must be a [B, L] integer tensor, got {documentIds.dtype} of shape [{string.Join(", ", documentIds.shape)}].", nameof(documentIds));
        using var scope = NewDisposeScope();
        long length = documentIds.shape[1];
        var sameDocument = documentIds.unsqueeze(2).eq(documentIds.unsqueeze(1));
        var causal = ones(length, length, ScalarType.Bool, documentIds.device).tril();
        return sameDocument.logical_and(causal).unsqueeze(1).MoveToOuterDisposeScope();
    }

    private PackedRow Row(IReadOnlyList<SftExample> examples, List<int> members)
    {
        var ids = new int[RowLength];
        var labels = new long[RowLength];
        var positions = new int[RowLength];
        var documents = new int[RowLength];
        int at = 0;
        for (int d = 0; d < members.Count; d++)
        {
            var example = examples[members[d]];
            for (int t = 0; t < example.Length; t++, at++)
            {
                ids[at] = example.InputIds[t];
                // Nothing predicts a document's first token from the previous document.
                labels[at] = t == 0 ? SftExample.IgnoreIndex : example.Labels[t];
                positions[at] = t;
                documents[at] = d;
            }
        }
        for (int p = 0; at < RowLength; at++, p++)
        {
            ids[at] = PadTokenId;
            labels[at] = SftExample.IgnoreIndex;
            positions[at] = p;
            documents[at] = PackedRow.PaddingDocument;
        }
        return new PackedRow(ids, labels, positions, documents, members.AsReadOnly());
    }
}
