using TorchSharp;

namespace TorchLoss.Tests;

/// <summary>
/// Asserts that repeated steps leave no live tensors behind. TorchSharp's statistics are per thread,
/// so tests on other threads do not disturb the count.
/// </summary>
public static class LeakCheck
{
    /// <summary>Runs <paramref name="step"/> once to warm up, then <paramref name="iterations"/> times, and asserts the live tensor count did not grow.</summary>
    public static void AssertNoGrowth(Action step, int iterations = 100)
    {
        step();
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (int i = 0; i < iterations; i++) step();
        long after = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        Assert.True(after <= before, $"live tensors grew from {before} to {after} over {iterations} iterations");
    }
}
