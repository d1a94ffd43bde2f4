using System.Text.Json;
using TorchLoss.Metrics;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace TorchLoss.Tests.Metrics;

/// <summary>
/// CalibrationTracker against tools/golden/make_calibration_golden.py (PyTorch 1.13): torchmetrics' multiclass
/// calibration error re-implemented from its published rule, and the same definition on the tracker's edges
/// b/M rounded to float32. Each case holds confidences exactly on every edge, the float32 on either side, 1.0, and
/// random ones, with ignored rows; it is folded in by two trackers that are merged.
/// </summary>
public class CalibrationGoldenTests(ITestOutputHelper output)
{
    // Tolerances: the tracker sums in float64 (the golden "tracker" values too, summed in another order);
    // torchmetrics sums in float32, so over 300–600 tokens its ECE and MCE are off by up to ~1e-7.
    private const double Float64Tolerance = 1e-12;
    private const double Float32SumsTolerance = 5e-7;   // measured: at most 9.2e-8

    private static readonly Lazy<JsonElement> Root = new(() => JsonDocument.Parse(
        File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Metrics", "Fixtures", "calibration_golden.json"))).RootElement);

    public static TheoryData<int> Cases()
    {
        var data = new TheoryData<int>();
        for (int i = 0; i < Root.Value.GetProperty("cases").GetArrayLength(); i++) data.Add(i);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void EceAndMceMatchTheGoldenValuesAndTorchmetricsWhereItsEdgesAgree(int index)
    {
        TorchBackend.EnsureLoaded();
        var golden = Root.Value.GetProperty("cases")[index];
        int m = golden.GetProperty("bins").GetInt32();
        using var scope = NewDisposeScope();
        var (logits, targets) = Inputs(golden);
        var options = new CalibrationOptions { Bins = m, TopK = 1 };
        using var whole = new CalibrationTracker(options);
        using var first = new CalibrationTracker(options);
        using var second = new CalibrationTracker(options);
        long half = targets.shape[0] / 2;
        whole.Update(logits, targets);
        first.Update(logits[..(int)half], targets[..(int)half]);
        second.Update(logits[(int)half..], targets[(int)half..]);
        first.Merge(second);

        var tracker = golden.GetProperty("tracker");
        long[] expectedCounts = Longs(tracker.GetProperty("bin_counts"));
        foreach (var s in new[] { whole.Snapshot(), first.Snapshot() })
        {
            Assert.Equal(expectedCounts[..m], s.BinCounts);
            Assert.Equal(expectedCounts[m], s.CertainTokens);
            Assert.Equal(golden.GetProperty("certain_tokens").GetInt64(), s.CertainTokens);
            Assert.Equal(tracker.GetProperty("ece").GetDouble(), s.Ece, Float64Tolerance);
            Assert.Equal(tracker.GetProperty("mce").GetDouble(), s.Mce, Float64Tolerance);
        }
        Assert.Equal(Doubles(tracker.GetProperty("edges")), ConfidenceBins.Edges(m).Select(e => (double)e));

        // torchmetrics (on PyTorch 1.13's float32 linspace edges): the same bins wherever its edges are b/M rounded to
        // float32; elsewhere only the bins beside a differing edge can differ, by the confidences between the two edges.
        var reference = golden.GetProperty("torchmetrics");
        long[] referenceCounts = Longs(reference.GetProperty("bin_counts"));
        int[] differingEdges = golden.GetProperty("linspace_differs_at").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        var s0 = whole.Snapshot();
        output.WriteLine($"M {m}: ECE {s0.Ece:R} torchmetrics {reference.GetProperty("ece").GetDouble():R}; MCE {s0.Mce:R} torchmetrics {reference.GetProperty("mce").GetDouble():R}; PyTorch 1.13 linspace differs at [{string.Join(", ", differingEdges)}]");
        if (referenceCounts.SequenceEqual(expectedCounts))
        {
            Assert.Equal(reference.GetProperty("ece").GetDouble(), s0.Ece, Float32SumsTolerance);
            Assert.Equal(reference.GetProperty("mce").GetDouble(), s0.Mce, Float32SumsTolerance);
        }
        else
        {
            Assert.NotEmpty(differingEdges);
            for (int b = 0; b <= m; b++)
                if (referenceCounts[b] != expectedCounts[b])
                    Assert.True(differingEdges.Contains(b) || differingEdges.Contains(b + 1), $"M {m}: bin {b} differs but neither of its edges does");
        }
    }

    [Fact]
    public void TheFixtureHitsEveryEdgeOneAndTheEdgesWhereLinspaceDiffers()
    {
        var cases = Root.Value.GetProperty("cases").EnumerateArray().ToArray();
        Assert.Contains(cases, c => c.GetProperty("linspace_differs_at").GetArrayLength() > 0);
        Assert.Contains(cases, c => c.GetProperty("bins").GetInt32() == 15);
        foreach (var c in cases)
        {
            int m = c.GetProperty("bins").GetInt32(), classes = c.GetProperty("classes").GetInt32();
            var confidences = c.GetProperty("rows").EnumerateArray().Select(r => (float)r[0].GetDouble()).ToHashSet();
            Assert.True(c.GetProperty("certain_tokens").GetInt64() > 0);
            foreach (float edge in ConfidenceBins.Edges(m).Where(e => e >= 2.0 / classes))
                Assert.True(confidences.Contains(edge) && confidences.Contains(MathF.BitDecrement(edge)), $"M {m}: edge {edge:R}");
        }
    }

    /// <summary>The float64 logits each (c, top, target) row stands for, as the script builds them.</summary>
    private static (Tensor Logits, Tensor Targets) Inputs(JsonElement golden)
    {
        int classes = golden.GetProperty("classes").GetInt32();
        var rows = golden.GetProperty("rows").EnumerateArray().ToArray();
        var logits = new double[rows.Length * classes];
        var targets = new long[rows.Length];
        for (int r = 0; r < rows.Length; r++)
        {
            double c = rows[r][0].GetDouble();
            int top = rows[r][1].GetInt32();
            double rest = c == 1.0 ? -1000.0 : Math.Log((1.0 - c) / (classes - 1));
            for (int k = 0; k < classes; k++) logits[r * classes + k] = k == top ? Math.Log(c) : rest;
            targets[r] = rows[r][2].GetInt64();
        }
        return (tensor(logits, [rows.Length, classes]), tensor(targets));
    }

    private static long[] Longs(JsonElement e) => e.EnumerateArray().Select(v => v.GetInt64()).ToArray();

    private static double[] Doubles(JsonElement e) => e.EnumerateArray().Select(v => v.GetDouble()).ToArray();
}
