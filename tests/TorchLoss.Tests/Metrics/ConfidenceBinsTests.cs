using TorchLoss.Metrics;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace TorchLoss.Tests.Metrics;

public class ConfidenceBinsTests
{
    private readonly ITestOutputHelper _output;

    public ConfidenceBinsTests(ITestOutputHelper output)
    {
        TorchBackend.EnsureLoaded();
        _output = output;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(7)]
    [InlineData(10)]
    [InlineData(15)]
    [InlineData(100)]
    public void AConfidenceOnAnEdgeBelongsToTheUpperBinAndOneHasASlotOfItsOwn(int m)
    {
        // c = b/M in float32, and the float32 on either side of it: [e_b, e_(b+1)) with e_b = (float)(b/M).
        var confidences = new List<float>();
        var expected = new List<long>();
        for (int b = 0; b <= m; b++)
        {
            float edge = (float)((double)b / m);
            confidences.Add(edge);
            expected.Add(b);
            if (b > 0) { confidences.Add(MathF.BitDecrement(edge)); expected.Add(b - 1); }
            if (b < m) { confidences.Add(MathF.BitIncrement(edge)); expected.Add(b); }
        }
        confidences.AddRange([0f, 1f]);
        expected.AddRange([0, m]);

        using var state = new TrackerState();
        var bins = new ConfidenceBins(m, state);
        using var scope = NewDisposeScope();
        Assert.Equal(expected, bins.Index(tensor(confidences.ToArray())).data<long>().ToArray());
    }

    [Fact]
    public void EdgesAreBOverMRoundedToFloat32WhateverLinspaceGives()
    {
        // The edge torchmetrics' float32 linspace(0, 1, 16) puts near 0.8 is 0.79999995 or 0.80000001 depending on the libtorch version.
        Assert.Equal(0.8f, ConfidenceBins.Edges(15)[12]);
        Assert.Equal(BitConverter.SingleToInt32Bits(0.8f), BitConverter.SingleToInt32Bits(ConfidenceBins.Edges(15)[12]));
        for (int m = 1; m <= 200; m++)
        {
            var edges = ConfidenceBins.Edges(m);
            Assert.Equal((0f, 1f, m + 1), (edges[0], edges[^1], edges.Length));
            for (int b = 1; b < m; b++)
            {
                // Correctly rounded: no float32 is nearer to b/M. |e·M − b| is exact in float64 (24 + 8 bits, then Sterbenz).
                double Gap(float e) => Math.Abs((double)e * m - b);
                Assert.True(Gap(edges[b]) <= Gap(MathF.BitIncrement(edges[b])) && Gap(edges[b]) <= Gap(MathF.BitDecrement(edges[b])), $"M {m}, b {b}");
            }
        }
    }

    [Theory]
    [InlineData(3)]
    [InlineData(10)]
    [InlineData(15)]
    [InlineData(100)]
    public void EceAndMceMatchTorchmetricsBinning(int m)
    {
        using var scope = NewDisposeScope();
        using var tracker = new CalibrationTracker(new CalibrationOptions { Bins = m, TopK = 1 });
        var rng = new Random(m);
        const int classes = 32;
        var torchEdges = torch.linspace(0, 1, m + 1, ScalarType.Float32).data<float>().ToArray();
        var reference = new List<(float Confidence, bool Correct)>();

        // Float64 rows whose float32 confidence is exactly an edge, a float32 beside it, or 1 (class 0 on top, the rest equal).
        // Edges where this libtorch's linspace differs from b/M rounded to float32 are left out: there the two bin differently.
        _output.WriteLine($"M {m}: this libtorch's float32 linspace differs from b/M rounded to float32 at b = [{string.Join(", ", Enumerable.Range(0, m + 1).Where(b => torchEdges[b] != ConfidenceBins.Edges(m)[b]))}]");
        var exact = new List<double>();
        for (int b = 1; b <= m; b++)
        {
            float edge = ConfidenceBins.Edges(m)[b];
            if (edge != torchEdges[b]) continue;
            exact.Add(edge);
            exact.Add(MathF.BitDecrement(edge));
            if (b < m) exact.Add(MathF.BitIncrement(edge));
        }
        exact.Add(1.0);
        var rows = new double[exact.Count * classes];
        var targets = new long[exact.Count];
        for (int r = 0; r < exact.Count; r++)
        {
            double c = exact[r], rest = c == 1.0 ? 0 : (1 - c) / (classes - 1);
            for (int k = 0; k < classes; k++) rows[r * classes + k] = k == 0 ? Math.Log(c) : (rest == 0 ? -1000 : Math.Log(rest));
            targets[r] = rng.Next(2);
        }
        Fold(tensor(rows, [exact.Count, classes]), tensor(targets));

        // Random float32 rows, sharp and flat, and rows of float32 confidence exactly 1.
        var logits = randn([400, classes], generator: new Generator((ulong)m)) * tensor(Enumerable.Range(0, 400).Select(i => (float)(i % 8)).ToArray()).unsqueeze(1);
        logits[TensorIndex.Slice(0, 20), 0] = 200f;
        Fold(logits, tensor(Enumerable.Range(0, 400).Select(_ => (long)rng.Next(3)).ToArray()));

        // torchmetrics' _binning_bucketize and _ce_compute: float32 edges linspace(0, 1, M + 1), bucketize(right=True) - 1, M + 1 bins.
        var count = new double[m + 1];
        var confidenceSum = new double[m + 1];
        var correct = new double[m + 1];
        foreach (var (c, ok) in reference)
        {
            int bin = torchEdges.Count(e => e <= c) - 1;
            count[bin]++;
            confidenceSum[bin] += c;
            correct[bin] += ok ? 1 : 0;
        }
        double n = reference.Count, ece = 0, mce = 0;
        for (int b = 0; b <= m; b++)
        {
            double gap = count[b] == 0 ? 0 : Math.Abs(correct[b] / count[b] - confidenceSum[b] / count[b]);
            ece += gap * count[b] / n;
            mce = Math.Max(mce, gap);
        }

        var s = tracker.Snapshot();
        Assert.Equal(reference.Count, s.Tokens);
        Assert.Equal(count[..m].Select(v => (long)v), s.BinCounts);
        Assert.Equal((long)count[m], s.CertainTokens);
        Assert.True(s.CertainTokens >= 21, $"{s.CertainTokens} tokens of confidence 1");
        Assert.Equal(ece, s.Ece, 6);
        Assert.Equal(mce, s.Mce, 6);

        void Fold(Tensor batchLogits, Tensor batchTargets)
        {
            tracker.Update(batchLogits, batchTargets);
            var (confidence, prediction) = batchLogits.log_softmax(1).exp().max(1);
            var c32 = confidence.to(ScalarType.Float32).data<float>().ToArray();
            var hit = prediction.eq(batchTargets).data<bool>().ToArray();
            for (int i = 0; i < c32.Length; i++) reference.Add((c32[i], hit[i]));
        }
    }
}
