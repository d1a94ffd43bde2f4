using System.Text.Json;
using TorchLoss.Metrics;
using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss.Tests.Metrics;

public class CalibrationTrackerTests
{
    /// <summary>Float64 logits whose softmax is exactly <paramref name="probabilities"/> (rows of two classes).</summary>
    private static Tensor LogitsOf(double[,] probabilities)
    {
        int rows = probabilities.GetLength(0), classes = probabilities.GetLength(1);
        var flat = new double[rows * classes];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < classes; c++)
                flat[r * classes + c] = Math.Log(probabilities[r, c]);
        return tensor(flat, [rows, classes]);
    }

    // Five counted rows, one ignored, one masked out. With 4 bins, edges 0, .25, .5, .75, 1:
    //   (0.75 right) lies exactly on an edge and belongs to bin 3, [0.75, 1), with (0.9 wrong), (0.8 right), (0.95 right);
    //   bin 2 holds (0.6 right); bins 0 and 1 are empty.
    private static readonly double[,] Probabilities =
        { { 0.75, 0.25 }, { 0.9, 0.1 }, { 0.6, 0.4 }, { 0.2, 0.8 }, { 0.95, 0.05 }, { 0.7, 0.3 }, { 0.3, 0.7 } };
    private static readonly long[] Targets = [0, 1, 0, 1, 0, -100, 0];
    private static readonly bool[] Mask = [true, true, true, true, true, true, false];

    [Fact]
    public void HandComputedMetricsWithEmptyBinsAndAConfidenceOnABinEdge()
    {
        using var tracker = new CalibrationTracker(new CalibrationOptions { Bins = 4, TopK = 1 });
        using (var logits = LogitsOf(Probabilities))
        using (var targets = tensor(Targets))
        using (var mask = tensor(Mask))
            tracker.Update(logits, targets, mask);
        var s = tracker.Snapshot();

        Assert.Equal(5, s.Tokens);
        Assert.Equal(0, s.SkippedRows);
        Assert.Equal(new long[] { 0, 0, 1, 4 }, s.BinCounts);
        Assert.Equal(new long[] { 0, 0, 1, 3 }, s.BinCorrect);
        Assert.Equal(0, s.CertainTokens);
        Assert.Equal(0.8, s.Accuracy, 12);
        Assert.Equal(0.8, s.TopKAccuracy, 12);
        Assert.Equal(4.0 / 5, s.MeanConfidence, 12);
        // bin 2: confidence 0.6, accuracy 1, gap 0.4; bin 3: confidence 0.85, accuracy 0.75, gap 0.1.
        // ECE = 1/5 · 0.4 + 4/5 · 0.1 = 0.16 (0.26 if the edge went down); MCE = 0.4 (0.325 if it went down).
        Assert.Equal(0.16, s.Ece, 12);
        Assert.Equal(0.4, s.Mce, 12);
        // Brier Σ p² − 2 p_target + 1 per row: 0.125, 1.62, 0.32, 0.08, 0.005.
        Assert.Equal(2.15 / 5, s.Brier, 12);
        double entropy = new[] { 0.75, 0.9, 0.6, 0.8, 0.95 }.Sum(p => -(p * Math.Log(p) + (1 - p) * Math.Log(1 - p))) / 5;
        Assert.Equal(entropy, s.MeanEntropy, 12);
        var bins = s.ReliabilityBins();
        Assert.True(double.IsNaN(bins[0].Accuracy) && double.IsNaN(bins[1].MeanConfidence));
        Assert.Equal((0.5, 0.75, 1L), (bins[2].Lower, bins[2].Upper, bins[2].Count));
        Assert.Equal(0.6, bins[2].MeanConfidence, 12);
        Assert.Equal(0.75, bins[3].Accuracy, 12);
    }

    [Fact]
    public void CertainPredictionsAreABinOfTheirOwnShownInTheLastBinAndTopKCountsTheRunnersUp()
    {
        using var tracker = new CalibrationTracker(new CalibrationOptions { TopK = 2 });
        // Confidence 1 (to float32) sits on the top edge; the second row's target is the second most probable class.
        using var logits = tensor(new double[] { 100, 0, 0, 3, 2, 0 }, [2, 3]);
        using var targets = tensor(new long[] { 0, 1 });
        tracker.Update(logits, targets);
        var s = tracker.Snapshot();
        // Confidence 1 is torchmetrics' bin M: counted apart for ECE and MCE, shown in the last of the M diagram bins.
        Assert.Equal((0L, 1L, 1L), (s.BinCounts[^1], s.CertainTokens, s.CertainCorrect));
        Assert.Equal(1.0, s.CertainConfidenceSum, 12);
        Assert.Equal((15, 1L, 1.0), (s.ReliabilityBins().Count, s.ReliabilityBins()[^1].Count, s.ReliabilityBins()[^1].Accuracy));
        Assert.Equal(0.5, s.Accuracy, 12);
        Assert.Equal(1.0, s.TopKAccuracy, 12);
    }

    [Fact]
    public void CountsTheTokensTheLossesCount()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(5);
        var logits = randn([3, 9, 7], generator: generator);
        var labels = randint(0, 7, [3, 9], generator: generator);
        labels[0, 4] = tensor(-100L);
        var mask = rand([3, 9], generator: generator).gt(0.3);
        using var aligned = new CalibrationTracker();
        using var shifted = new CalibrationTracker(new CalibrationOptions { Causal = true });
        using var legacy = new CalibrationTracker();

        shifted.Update(logits, labels, mask);
#pragma warning disable CS0618 // the superseded call must keep working
        legacy.UpdateCausal(logits, labels, mask);
#pragma warning restore CS0618
        aligned.Update(logits[.., ..^1, ..], labels[.., 1..], mask[.., 1..]);

        Assert.Equal(new CrossEntropyOptions { Causal = true }.CountTokens(labels, mask), shifted.Snapshot().Tokens);
        AssertSame(aligned.Snapshot(), shifted.Snapshot());
        AssertSame(aligned.Snapshot(), legacy.Snapshot());
    }

    [Fact]
    public void MergingEqualsComputingOnTheUnion()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(7);
        var logits = randn([300, 11], generator: generator) * 3;
        var targets = randint(0, 11, [300], generator: generator);
        targets[17] = tensor(-100L);
        using var whole = new CalibrationTracker();
        using var a = new CalibrationTracker();
        using var b = new CalibrationTracker();
        using var c = new CalibrationTracker();
        whole.Update(logits, targets);
        a.Update(logits[..100], targets[..100]);
        b.Update(logits[100..250], targets[100..250]);
        c.Update(logits[250..], targets[250..]);

        a.Merge(b);
        a.Merge(c);

        AssertSame(whole.Snapshot() with { Updates = 3 }, a.Snapshot());
        Assert.Equal(150, b.Snapshot().Tokens);   // the merged tracker is unchanged
    }

    [Fact]
    public void APerfectlyCalibratedSourceHasAnEceThatShrinksWithMoreTokens()
    {
        double Ece(int n)
        {
            using var scope = NewDisposeScope();
            var generator = new Generator(11);
            var logits = randn([n, 10], generator: generator) * 2;
            // The targets are drawn from the predicted distribution itself: the model is the source.
            var targets = multinomial(logits.softmax(1), 1, generator: generator).squeeze(1);
            using var tracker = new CalibrationTracker();
            tracker.Update(logits, targets);
            return tracker.Snapshot().Ece;
        }

        double small = Ece(1_000), large = Ece(200_000);
        Assert.True(large < 0.01, $"ECE over 200,000 tokens of a calibrated source is {large:F4}");
        Assert.True(large < small / 3, $"ECE did not shrink: {small:F4} over 1,000 tokens, {large:F4} over 200,000");
    }

    [Theory]
    [InlineData(0.5, true)]    // sharpened: over-confident
    [InlineData(2.0, false)]   // flattened: under-confident
    public void TemperatureMovesConfidenceAwayFromAccuracy(double temperature, bool overconfident)
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(13);
        var source = randn([20_000, 10], generator: generator) * 2;
        var targets = multinomial(source.softmax(1), 1, generator: generator).squeeze(1);
        using var tracker = new CalibrationTracker();
        tracker.Update(source / temperature, targets);
        var s = tracker.Snapshot();
        Assert.Equal(overconfident, s.Overconfidence > 0);
        Assert.True(Math.Abs(s.Overconfidence) > 0.05, $"confidence {s.MeanConfidence:F3} vs accuracy {s.Accuracy:F3}");
        Assert.True(s.Ece > 0.05, $"ECE {s.Ece:F4}");
    }

    [Fact]
    public void NonFiniteRowsAreSkippedAndCounted()
    {
        using var tracker = new CalibrationTracker(new CalibrationOptions { Bins = 4, TopK = 1 });
        using var clean = new CalibrationTracker(new CalibrationOptions { Bins = 4, TopK = 1 });
        using var scope = NewDisposeScope();
        var logits = LogitsOf(Probabilities);
        var targets = tensor(Targets);
        var poisoned = cat([logits, tensor(new[] { double.NaN, 0, double.PositiveInfinity, 0, double.NaN, 1 }, [3, 2])]);
        var poisonedTargets = cat([targets, tensor(new long[] { 0, 1, -100 })]);   // the ignored NaN row is not a skip

        tracker.Update(poisoned, poisonedTargets);
        clean.Update(logits, targets);

        var s = tracker.Snapshot();
        Assert.Equal(2, s.SkippedRows);
        AssertSame(clean.Snapshot(), s with { SkippedRows = 0 });
        Assert.True(double.IsFinite(s.Ece) && double.IsFinite(s.MeanEntropy));
    }

    [Fact]
    public void SnapshotSurvivesJsonAndRestores()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(17);
        var logits = randn([64, 5], generator: generator);
        var targets = randint(0, 5, [64], generator: generator);
        using var first = new CalibrationTracker();
        first.Update(logits[..32], targets[..32]);
        string json = JsonSerializer.Serialize(first.Snapshot());
        var restored = JsonSerializer.Deserialize<CalibrationSnapshot>(json)!;
        using var resumed = new CalibrationTracker();
        resumed.Restore(restored);
        first.Update(logits[32..], targets[32..]);
        resumed.Update(logits[32..], targets[32..]);
        AssertSame(first.Snapshot(), resumed.Snapshot());

        resumed.Reset();
        Assert.Equal(0, resumed.Snapshot().Tokens);
        Assert.True(double.IsNaN(resumed.Snapshot().Ece));
    }

    [Fact]
    public void BadInputsGiveClearErrors()
    {
        Assert.Contains("Bins", Assert.Throws<ArgumentException>(() => new CalibrationTracker(new CalibrationOptions { Bins = 0 })).Message);
        Assert.Contains("TopK", Assert.Throws<ArgumentException>(() => new CalibrationTracker(new CalibrationOptions { TopK = 0 })).Message);
        using var tracker = new CalibrationTracker();
        using var scope = NewDisposeScope();
        var logits = zeros(4, 3);
        Assert.Contains("floating-point", Assert.Throws<ArgumentException>(() => tracker.Update(zeros(4, 3, ScalarType.Int64), zeros(4, ScalarType.Int64))).Message);
        Assert.Contains("does not match", Assert.Throws<ArgumentException>(() => tracker.Update(logits, zeros(5, ScalarType.Int64))).Message);
        Assert.Contains("integer class indices", Assert.Throws<ArgumentException>(() => tracker.Update(logits, zeros(4))).Message);
        Assert.Contains("bool", Assert.Throws<ArgumentException>(() => tracker.Update(logits, zeros(4, ScalarType.Int64), ones(4))).Message);
        Assert.Contains("holds 3", Assert.Throws<ArgumentException>(() => tracker.Update(logits, tensor(new long[] { 0, 1, 2, 3 }))).Message);
        using var causal = new CalibrationTracker(new CalibrationOptions { Causal = true });
        Assert.Contains("[B, T, V]", Assert.Throws<ArgumentException>(() => causal.Update(logits, zeros(4, ScalarType.Int64))).Message);
        Assert.Contains("itself", Assert.Throws<ArgumentException>(() => tracker.Merge(tracker)).Message);
        using var other = new CalibrationTracker(new CalibrationOptions { Bins = 10 });
        Assert.Contains("same bins", Assert.Throws<ArgumentException>(() => tracker.Merge(other)).Message);
        Assert.Throws<ArgumentException>(() => tracker.Restore(other.Snapshot()));
        var impossible = tracker.Snapshot() with { Updates = 1, Tokens = 3 };   // tokens that are in no bin
        Assert.Contains("not a valid", Assert.Throws<ArgumentException>(() => tracker.Restore(impossible)).Message);
        Assert.Equal(0, tracker.Updates);   // failed updates changed nothing
    }

    [Fact]
    public void FeedsFromThePerplexityEvaluatorsPass()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(19);
        var table = randn([6, 6], generator: generator);
        var text = randint(0, 6, [41], generator: generator);
        Tensor Model(Tensor ids) => table.index_select(0, ids.flatten()).reshape(ids.shape[0], ids.shape[1], 6);
        using var calibration = new CalibrationTracker(new CalibrationOptions { Causal = true });
        var perplexity = new PerplexityEvaluator(8, 5, batchSize: 2)
            .Evaluate(Model, text, onBatch: b => calibration.Update(b.Logits, b.Labels, b.LossMask));
        Assert.Equal(perplexity.Tokens, calibration.Snapshot().Tokens);
        Assert.Equal(40, calibration.Snapshot().Tokens);

        // The same predictions scored directly: every token after the first, by the table row of its predecessor.
        using var direct = new CalibrationTracker();
        direct.Update(Model(text[..^1].unsqueeze(0)).squeeze(0), text[1..]);
        AssertSame(direct.Snapshot() with { Updates = calibration.Updates }, calibration.Snapshot());
    }

    [Fact]
    public void UpdatesDoNotLeak()
    {
        using var tracker = new CalibrationTracker();
        using var causal = new CalibrationTracker(new CalibrationOptions { Causal = true });
        using var logits = randn(16, 9, 5);
        using var labels = randint(0, 5, [16, 9]);
        LeakCheck.AssertNoGrowth(() =>
        {
            causal.Update(logits, labels);
            tracker.Update(logits, labels);
            _ = tracker.Snapshot();
        });
        using var other = new CalibrationTracker();
        LeakCheck.AssertNoGrowth(() => { other.Merge(tracker); other.Reset(); other.Restore(tracker.Snapshot()); }, 20);
    }

    [Fact]
    public void ResetClearsEveryTotalAndTheTrackerCountsAfresh()
    {
        using var scope = NewDisposeScope();
        using var tracker = new CalibrationTracker(new CalibrationOptions { Bins = 4 });
        using var fresh = new CalibrationTracker(new CalibrationOptions { Bins = 4 });
        var logits = tensor(Probabilities).log();
        var targets = tensor(Targets);
        tracker.Update(logits, targets);
        tracker.Update(tensor(new[,] { { 0.0, -1000.0 } }), tensor(new long[] { 0 }));   // a confidence of 1
        tracker.Reset();

        var empty = tracker.Snapshot();
        Assert.Equal((0L, 0L, 0L, 0L), (empty.Updates, empty.Tokens, empty.CertainTokens, empty.BinCounts.Sum()));
        Assert.Equal((0.0, 0.0), (empty.ConfidenceSum, empty.BinConfidenceSums.Sum()));
        tracker.Update(logits, targets);
        fresh.Update(logits, targets);
        AssertSame(fresh.Snapshot(), tracker.Snapshot());
    }

    private static void AssertSame(CalibrationSnapshot expected, CalibrationSnapshot actual)
    {
        Assert.Equal((expected.Bins, expected.TopK, expected.Updates, expected.Tokens, expected.Top1Correct, expected.TopKCorrect, expected.SkippedRows),
            (actual.Bins, actual.TopK, actual.Updates, actual.Tokens, actual.Top1Correct, actual.TopKCorrect, actual.SkippedRows));
        Assert.Equal(expected.ConfidenceSum, actual.ConfidenceSum, 9);
        Assert.Equal(expected.EntropySum, actual.EntropySum, 9);
        Assert.Equal(expected.BrierSum, actual.BrierSum, 9);
        Assert.Equal(expected.BinCounts, actual.BinCounts);
        Assert.Equal(expected.BinCorrect, actual.BinCorrect);
        for (int b = 0; b < expected.Bins; b++) Assert.Equal(expected.BinConfidenceSums[b], actual.BinConfidenceSums[b], 9);
        Assert.Equal((expected.CertainTokens, expected.CertainCorrect), (actual.CertainTokens, actual.CertainCorrect));
        Assert.Equal(expected.CertainConfidenceSum, actual.CertainConfidenceSum, 9);
    }
}
