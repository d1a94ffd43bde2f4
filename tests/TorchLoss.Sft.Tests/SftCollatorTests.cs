using TorchLoss.Sft;
using TorchSharp;
using static TorchLoss.Sft.Tests.SftTestKit;

namespace TorchLoss.Sft.Tests;

public class SftCollatorTests
{
    private static SftExample Example(int length, params int[] trained)
    {
        var ids = Enumerable.Range(10, length).ToArray();
        var labels = ids.Select((id, i) => trained.Contains(i) ? (long)id : SftExample.IgnoreIndex).ToArray();
        return new SftExample(ids, labels);
    }

    [Fact]
    public void PadsOnTheRightWithIgnoredLabelsAndAFalseMask()
    {
        var collator = new SftCollator(padTokenId: 0);
        using var batch = collator.Collate([Example(3, 2), Example(5, 1, 4)]);
        Assert.Equal([2L, 5], batch.InputIds.shape);
        Assert.Equal(torch.ScalarType.Int64, batch.InputIds.dtype);
        Assert.Equal(torch.ScalarType.Bool, batch.AttentionMask.dtype);
        Assert.Equal([10L, 11, 12, 0, 0, 10, 11, 12, 13, 14], batch.InputIds.data<long>().ToArray());
        Assert.Equal([-100L, -100, 12, -100, -100, -100, 11, -100, -100, 14], batch.Labels.data<long>().ToArray());
        Assert.Equal([true, true, true, false, false, true, true, true, true, true], batch.AttentionMask.data<bool>().ToArray());
        Assert.Equal(3, batch.TrainedTokenCount);
    }

    [Fact]
    public void PadsToAMultiple()
    {
        using var batch = new SftCollator(padTokenId: 1, padToMultipleOf: 8).Collate([Example(3, 2), Example(9, 8)]);
        Assert.Equal([2L, 16], batch.Labels.shape);
        Assert.Equal(1, batch.InputIds[0, 15].item<long>());
    }

    [Fact]
    public void BuiltChatsCollateAndLeaveNothingBehind()
    {
        var builder = Builder(Chars, ChatTemplate.Plain);
        var examples = new[] { builder.Build([U("a"), A("b")]), builder.Build([U("longer question"), A("longer answer")]) };
        var collator = new SftCollator(padTokenId: 0);
        LeakCheck.AssertNoGrowth(() =>
        {
            using var scope = torch.NewDisposeScope();
            var batch = collator.Collate(examples);
            Assert.Equal(examples.Sum(e => e.TrainedTokenCount), batch.TrainedTokenCount);
        }, 20);
    }

    [Fact]
    public void BadInputIsRejected()
    {
        var collator = new SftCollator(0);
        Assert.Throws<ArgumentException>(() => collator.Collate([]));
        Assert.Throws<ArgumentException>(() => collator.Collate([Example(3, 1), null!]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new SftCollator(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new SftCollator(0, 0));
    }
}
