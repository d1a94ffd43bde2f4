using TorchLoss.Sft;

namespace TorchLoss.Sft.Tests;

public class SftExampleTests
{
    [Fact]
    public void CountsAndRunsOfTrainedTokens()
    {
        var example = new SftExample([5, 6, 7, 8, 9, 10], [-100, 6, 7, -100, -100, 10]);
        Assert.Equal(3, example.TrainedTokenCount);
        Assert.Equal([1..3, 5..6], example.TrainedRuns());
    }

    [Fact]
    public void InvariantsTheLossReliesOnAreEnforced()
    {
        Assert.Contains("same length", Assert.Throws<ArgumentException>(() => new SftExample([1, 2, 3], [-100, 2])).Message);
        Assert.Contains("at least 2", Assert.Throws<ArgumentException>(() => new SftExample([1], [-100])).Message);
        Assert.Contains("unshifted", Assert.Throws<ArgumentException>(() => new SftExample([1, 2, 3], [-100, 3, -100])).Message);
        Assert.Contains("position 0", Assert.Throws<ArgumentException>(() => new SftExample([1, 2], [1, 2])).Message);
        Assert.Contains("non-negative", Assert.Throws<ArgumentException>(() => new SftExample([1, -2], [-100, -2])).Message);
        var none = Assert.Throws<SftExampleException>(() => new SftExample([1, 2], [-100, -100]));
        Assert.Equal(SftRejection.NoTrainedTokens, none.Reason);
    }
}
