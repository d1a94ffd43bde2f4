using TorchLoss.Sft;
using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss.Sft.Tests;

public class SequencePackerTests
{
    /// <summary>An example of the given length whose tokens are 100*tag + position, every position but 0 trained.</summary>
    private static SftExample Example(int tag, int length)
    {
        var ids = Enumerable.Range(0, length).Select(p => 100 * tag + p).ToArray();
        return new SftExample(ids, ids.Select((id, p) => p == 0 ? SftExample.IgnoreIndex : id).ToArray());
    }

    private static readonly SftExample[] Five = [Example(1, 5), Example(2, 3), Example(3, 4), Example(4, 2), Example(5, 6)];

    [Fact]
    public void BestFitDecreasingPlacesEachExampleInTheFullestRowWithRoom()
    {
        // Longest first: 6 opens row 0 (2 free), 5 opens row 1 (3 free), 4 opens row 2 (4 free),
        // 3 fits rows 1 and 2 and goes to the fuller row 1, 2 fits rows 0 and 2 and goes to row 0.
        var rows = new SequencePacker(rowLength: 8, padTokenId: 0).Pack(Five);
        Assert.Equal(3, rows.Count);
        Assert.Equal([4, 3], rows[0].ExampleIndices);
        Assert.Equal([0, 1], rows[1].ExampleIndices);
        Assert.Equal([2], rows[2].ExampleIndices);
        Assert.Equal([0, 0, 4], rows.Select(r => r.PaddingCount));
    }

    [Fact]
    public void PositionsRestartPerDocumentAndNoLabelCrossesABoundary()
    {
        var rows = new SequencePacker(8, padTokenId: 7).Pack(Five);
        var row = rows[0];   // example 5 (6 tokens) then example 4 (2 tokens)
        Assert.Equal([500, 501, 502, 503, 504, 505, 400, 401], row.InputIds);
        Assert.Equal([0, 1, 2, 3, 4, 5, 0, 1], row.PositionIds);
        Assert.Equal([0, 0, 0, 0, 0, 0, 1, 1], row.DocumentIds);
        Assert.Equal([-100L, 501, 502, 503, 504, 505, -100, 401], row.Labels);
        var padded = rows[2];
        Assert.Equal([300, 301, 302, 303, 7, 7, 7, 7], padded.InputIds);
        Assert.Equal([0, 1, 2, 3, 0, 1, 2, 3], padded.PositionIds);
        Assert.Equal([0, 0, 0, 0, -1, -1, -1, -1], padded.DocumentIds);
        Assert.Equal([-100L, 301, 302, 303, -100, -100, -100, -100], padded.Labels);
        Assert.Equal(Five.Sum(e => e.TrainedTokenCount), rows.Sum(r => r.TrainedTokenCount));
    }

    [Fact]
    public void BlockDiagonalCausalMaskHasOneBlockPerDocument()
    {
        var packer = new SequencePacker(8, 0);
        using var batch = packer.ToBatch(packer.Pack(Five));
        using var mask = SequencePacker.BlockDiagonalCausalMask(batch.DocumentIds);
        Assert.Equal([3L, 1, 8, 8], mask.shape);
        Assert.Equal(ScalarType.Bool, mask.dtype);
        bool At(int b, int q, int k) => mask[b, 0, q, k].item<bool>();
        Assert.True(At(0, 5, 0));    // same document, earlier key
        Assert.False(At(0, 0, 1));   // the future
        Assert.False(At(0, 6, 5));   // the previous document
        Assert.True(At(0, 7, 6));
        Assert.True(At(2, 5, 4));    // padding attends to padding only
        Assert.False(At(2, 5, 3));
        using var rowsWithAKey = mask.any(3);
        Assert.True(rowsWithAKey.all().item<bool>());   // no all-false query row, so softmax never sees only -inf
    }

    [Fact]
    public void AttentionWithTheMaskEqualsAttendingToEachDocumentAlone()
    {
        var packer = new SequencePacker(8, 0);
        using var batch = packer.ToBatch(packer.Pack(Five));
        using var scope = NewDisposeScope();
        var mask = SequencePacker.BlockDiagonalCausalMask(batch.DocumentIds);
        manual_seed(3);
        var q = randn(3, 2, 8, 4);
        var k = randn(3, 2, 8, 4);
        var v = randn(3, 2, 8, 4);
        var packed = nn.functional.scaled_dot_product_attention(q, k, v, mask);
        Assert.False(packed.isnan().any().item<bool>());
        // Row 0 holds a 6-token and a 2-token document.
        foreach (var (start, end) in new[] { (0, 6), (6, 8) })
        {
            var alone = nn.functional.scaled_dot_product_attention(q[.., .., start..end], k[.., .., start..end], v[.., .., start..end], is_casual: true);
            Assert.True(packed[0, .., start..end].allclose(alone[0], rtol: 1e-5, atol: 1e-6));
        }
    }

    [Fact]
    public void TensorsMatchTheRows()
    {
        var packer = new SequencePacker(8, 0);
        var rows = packer.Pack(Five);
        using var batch = packer.ToBatch(rows);
        Assert.Equal([3L, 8], batch.PositionIds.shape);
        Assert.Equal(rows.SelectMany(r => r.Labels).ToArray(), batch.Labels.data<long>().ToArray());
        Assert.Equal(rows.SelectMany(r => r.PositionIds).Select(p => (long)p).ToArray(), batch.PositionIds.data<long>().ToArray());
        Assert.Equal(Five.Sum(e => e.TrainedTokenCount), batch.TrainedTokenCount);
    }

    [Fact]
    public void BatchesAndMasksLeaveNothingBehind()
    {
        var packer = new SequencePacker(8, 0);
        var rows = packer.Pack(Five);
        LeakCheck.AssertNoGrowth(() =>
        {
            using var scope = NewDisposeScope();
            var batch = packer.ToBatch(rows);
            var mask = SequencePacker.BlockDiagonalCausalMask(batch.DocumentIds);
            Assert.Equal(4, mask.dim());
        }, 20);
    }

    [Fact]
    public void BadInputIsRejected()
    {
        var packer = new SequencePacker(4, 0);
        Assert.Contains("row length 4", Assert.Throws<ArgumentException>(() => packer.Pack([Example(1, 5)])).Message);
        Assert.Throws<ArgumentException>(() => packer.Pack([null!]));
        Assert.Throws<ArgumentException>(() => packer.ToBatch([]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new SequencePacker(1, 0));
        using var floats = zeros(2, 3);
        Assert.Throws<ArgumentException>(() => SequencePacker.BlockDiagonalCausalMask(floats));
        Assert.Empty(packer.Pack([]));
    }
}
