using TorchLoss.Metrics;
using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss.Tests.Metrics;

public class TrackerStateTests
{
    public TrackerStateTests() => TorchBackend.EnsureLoaded();

    [Fact]
    public void MergeAddsTotalsOnlyAndResetKeepsConstants()
    {
        using var a = new TrackerState();
        using var b = new TrackerState();
        var (totalA, localA, constantA) = Declare(a, windowSize: 3);
        var (totalB, localB, _) = Declare(b, windowSize: 5);   // local tensors may differ in size
        totalA.Load([1L, 2]);
        totalB.Load([10L, 20]);
        localA.Load([1.0, 1, 1]);
        localB.Load([7.0, 7, 7, 7, 7]);

        a.Merge(b);

        Assert.Equal(new long[] { 11, 22 }, totalA.ReadLongs());
        Assert.Equal(new double[] { 1, 1, 1 }, localA.ReadDoubles());
        Assert.Equal(new long[] { 10, 20 }, totalB.ReadLongs());   // the other group is unchanged
        a.Reset();
        Assert.Equal(new long[] { 0, 0 }, totalA.ReadLongs());
        Assert.Equal(new double[] { 0, 0, 0 }, localA.ReadDoubles());
        Assert.Equal(new double[] { 0.5, 0.25 }, constantA.ReadDoubles());
    }

    [Fact]
    public void GroupsDeclaredDifferentlyDoNotMerge()
    {
        using var a = new TrackerState();
        using var b = new TrackerState();
        a.Add(ScalarType.Int64, 2);
        b.Add(ScalarType.Int64, 3);
        Assert.Throws<InvalidOperationException>(() => a.Merge(b));
        using var c = new TrackerState();
        c.Local(ScalarType.Int64, 2);
        Assert.Throws<InvalidOperationException>(() => a.Merge(c));
    }

    [Fact]
    public void StateOutlivesTheCallersScopeAndDisposeFreesIt()
    {
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        var state = new TrackerState();
        StateTensor total;
        using (var scope = NewDisposeScope())
        {
            (total, _, _) = Declare(state, windowSize: 4);
            state.PinTo(CPU);
        }
        Assert.Equal(new long[] { 0, 0 }, total.ReadLongs());   // still alive after the scope
        state.Reset();
        state.Dispose();
        Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }

    [Fact]
    public void MergeResetAndReadsDoNotLeak()
    {
        using var a = new TrackerState();
        using var b = new TrackerState();
        var (totalA, _, _) = Declare(a, 3);
        Declare(b, 3);
        LeakCheck.AssertNoGrowth(() =>
        {
            a.Merge(b);
            _ = totalA.ReadLongs();
            totalA.Load([1L, 2]);
            a.Reset();
        });
    }

    private static (StateTensor Total, StateTensor Local, StateTensor Constant) Declare(TrackerState state, int windowSize) =>
        (state.Add(ScalarType.Int64, 2), state.Local(ScalarType.Float64, windowSize), state.Constant(tensor(new[] { 0.5, 0.25 })));
}
