using System.Text.Json;
using Microsoft.Extensions.Logging;
using TorchLoss.Metrics;
using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss.Tests.Metrics;

public class PerplexityTrackerTests
{
    private static readonly double Ln2 = Math.Log(2);

    /// <summary>A result of <paramref name="tokens"/> tokens, each scored by a uniform distribution over <paramref name="classes"/>: NLL ln C per token.</summary>
    private static LossResult Uniform(long tokens, long classes)
    {
        using var scope = NewDisposeScope();
        using var loss = new TokenCrossEntropy();
        return loss.Compute(zeros(tokens, classes, ScalarType.Float64), zeros(tokens, ScalarType.Int64)).MoveToOuterDisposeScope();
    }

    [Fact]
    public void WeightsBatchesByTokensNotByBatch()
    {
        using var tracker = new PerplexityTracker();
        using (var small = Uniform(2, 2)) tracker.Update(small);   // perplexity 2 over 2 tokens
        using (var large = Uniform(6, 8)) tracker.Update(large);   // perplexity 8 over 6 tokens

        // exp((2·ln 2 + 6·ln 8) / 8) = 2^2.5; the naive answers are 5 (mean of perplexities) and 4 (exp of mean of batch means).
        Assert.Equal(8, tracker.Tokens);
        Assert.Equal(2.5 * Ln2, tracker.MeanNll, 12);
        Assert.Equal(Math.Pow(2, 2.5), tracker.Perplexity, 12);
        Assert.Equal(2.5, tracker.BitsPerToken, 12);
        Assert.NotEqual(5.0, tracker.Perplexity, 3);
        Assert.NotEqual(4.0, tracker.Perplexity, 3);
    }

    [Theory]
    [InlineData(SmoothingKind.Uniform)]
    [InlineData(SmoothingKind.OtherClasses)]
    public void LabelSmoothingDoesNotChangePerplexity(SmoothingKind kind)
    {
        using var scope = NewDisposeScope();
        var logits = randn([2, 6, 11], generator: new Generator(7));
        var labels = randint(0, 11, [2, 6], generator: new Generator(8));
        using var plainLoss = new TokenCrossEntropy(new CrossEntropyOptions { Causal = true });
        using var smoothLoss = new TokenCrossEntropy(new CrossEntropyOptions { Causal = true, LabelSmoothing = 0.2, Smoothing = kind });
        using var plain = plainLoss.Compute(logits, labels);
        using var smooth = smoothLoss.Compute(logits, labels);
        using var plainTracker = new PerplexityTracker();
        using var smoothTracker = new PerplexityTracker();

        plainTracker.Update(plain);
        smoothTracker.Update(smooth);

        Assert.Equal(plainTracker.Perplexity, smoothTracker.Perplexity, 5);   // float32 logits: same NLL up to rounding
        Assert.Equal(Math.Exp(plain.Loss.item<float>()), plainTracker.Perplexity, 4);
        // The smoothed training loss itself would give a different (inflated) number: the tracker must not use it.
        Assert.NotEqual(Math.Exp(smooth.Loss.item<float>()), smoothTracker.Perplexity, 2);
    }

    [Fact]
    public void MaskedAndIgnoredTokensAreNotCounted()
    {
        using var scope = NewDisposeScope();
        var logits = randn([1, 5, 4], generator: new Generator(3));
        var labels = tensor(new long[] { 0, 1, -100, 3, 2 }).reshape(1, 5);
        var mask = tensor(new[] { true, true, true, false, true }).reshape(1, 5);
        using var loss = new TokenCrossEntropy(new CrossEntropyOptions { Causal = true });
        using var result = loss.Compute(logits, labels, mask);
        using var tracker = new PerplexityTracker();

        tracker.Update(result);

        // Positions 0..3 predict labels 1..4: label 1 counted, -100 ignored, 3 masked, 2 counted.
        var logProbs = logits.log_softmax(-1);
        double expected = -(logProbs[0, 0, 1].item<float>() + logProbs[0, 3, 2].item<float>());
        Assert.Equal(2, tracker.Tokens);
        Assert.Equal(expected / 2, tracker.MeanNll, 5);
    }

    [Fact]
    public void ZeroTokensGiveNaNNotAnException()
    {
        using var tracker = new PerplexityTracker();
        Assert.Equal(0, tracker.Tokens);
        Assert.True(double.IsNaN(tracker.MeanNll));
        Assert.True(double.IsNaN(tracker.Perplexity));
        Assert.True(double.IsNaN(tracker.BitsPerToken));

        // A batch whose labels are all masked adds nothing and is not "skipped".
        using (var scope = NewDisposeScope())
        {
            using var loss = new TokenCrossEntropy(new CrossEntropyOptions { Causal = true });
            using var allMasked = loss.Compute(randn(1, 4, 3), full(1, 4, -100L));
            tracker.Update(allMasked);
        }
        Assert.Equal(0, tracker.Tokens);
        Assert.Equal(0, tracker.SkippedBatches);
        Assert.True(double.IsNaN(tracker.Perplexity));

        using (var real = Uniform(3, 5)) tracker.Update(real);
        Assert.Equal(5.0, tracker.Perplexity, 12);
    }

    [Fact]
    public void OverflowGivesInfinity()
    {
        using var tracker = new PerplexityTracker();
        tracker.Update(1000.0 * 4, 4);
        Assert.Equal(1000.0, tracker.MeanNll);
        Assert.Equal(double.PositiveInfinity, tracker.Perplexity);

        // The same through a tensor update: logits [1000, 0] with target 1 cost 1000 nats.
        using var other = new PerplexityTracker();
        using (var scope = NewDisposeScope())
        {
            using var loss = new TokenCrossEntropy();
            using var result = loss.Compute(tensor(new[] { 1000.0, 0.0 }).reshape(1, 2), tensor(new long[] { 1 }));
            other.Update(result);
        }
        Assert.Equal(1000.0, other.MeanNll, 6);
        Assert.Equal(double.PositiveInfinity, other.Perplexity);
    }

    [Fact]
    public void NonFiniteTensorBatchIsSkippedCountedAndLoggedWithItsStep()
    {
        var logger = new RecordingLogger();
        using var tracker = new PerplexityTracker(logger);
        using var loss = new TokenCrossEntropy();
        for (int step = 1; step <= 4; step++)
        {
            using var scope = NewDisposeScope();
            var logits = zeros(3, 4, ScalarType.Float64);
            if (step == 3) logits[1, 2] = tensor(double.NaN);
            using var result = loss.Compute(logits, zeros(3, ScalarType.Int64));
            tracker.Update(result);
        }

        Assert.Empty(logger.Entries);                  // checked lazily: no read, no sync, no warning yet
        Assert.Equal(9, tracker.Tokens);                // reading flushes the check
        Assert.Equal(1, tracker.SkippedBatches);
        Assert.Equal(4, tracker.Updates);
        Assert.Equal(4.0, tracker.Perplexity, 12);
        var warning = Assert.Single(logger.Entries);
        Assert.Equal(LogLevel.Warning, warning.Level);
        Assert.Contains("step(s) 3", warning.Message);

        _ = tracker.Perplexity;
        Assert.Single(logger.Entries);                  // logged once
    }

    [Fact]
    public void SkipRecordsSurviveManyUpdatesWithoutAnyRead()
    {
        var logger = new RecordingLogger();
        using var tracker = new PerplexityTracker(logger, windowSize: 3);
        using var loss = new TokenCrossEntropy();
        for (int step = 1; step <= 700; step++)   // more than the initial device-side record capacity
        {
            using var scope = NewDisposeScope();
            var logits = zeros(2, 2, ScalarType.Float64);
            if (step is 5 or 550) logits[0, 0] = tensor(double.PositiveInfinity);
            using var result = loss.Compute(logits, zeros(2, ScalarType.Int64));
            tracker.Update(result);
        }

        Assert.Equal(2, tracker.SkippedBatches);
        Assert.Equal(2 * 698, tracker.Tokens);
        Assert.Contains("skipped 2 update(s)", Assert.Single(logger.Entries).Message);
        Assert.Contains("step(s) 5, 550;", logger.Entries[0].Message);
    }

    [Fact]
    public void UnreadSkipRecordsStayInABoundedBuffer()
    {
        var logger = new RecordingLogger();
        using var tracker = new PerplexityTracker(logger, windowSize: 3);
        using var loss = new TokenCrossEntropy();
        long initial = tracker.PendingSkipBufferLength;
        for (int step = 1; step <= 2500; step++)   // more than the buffer holds, and never read
        {
            using var scope = NewDisposeScope();
            var logits = zeros(2, 2, ScalarType.Float64);
            if (step is 5 or 2100) logits[0, 0] = tensor(double.PositiveInfinity);
            using var result = loss.Compute(logits, zeros(2, ScalarType.Int64));
            tracker.Update(result);
            Assert.Equal(initial, tracker.PendingSkipBufferLength);
        }

        Assert.Contains("step(s) 5;", Assert.Single(logger.Entries).Message);   // read back when the buffer filled
        Assert.Equal(2, tracker.SkippedBatches);
        Assert.Equal(2 * 2498, tracker.Tokens);
        Assert.Equal(2, logger.Entries.Count);
        Assert.Contains("step(s) 2100;", logger.Entries[1].Message);
    }

    [Fact]
    public void AnUpdateThatThrowsChangesNothing()
    {
        using var tracker = new PerplexityTracker(windowSize: 2);
        using (var first = Uniform(4, 2)) tracker.Update(first);
        var before = tracker.Snapshot();
        var windowBefore = tracker.WindowSnapshot();

        using (var scope = NewDisposeScope())
        {
            var meta = new Device(DeviceType.META);
            using var onMeta = new LossResult(zeros(1), zeros(Array.Empty<long>(), ScalarType.Float64, meta), zeros(Array.Empty<long>(), ScalarType.Int64, meta), zeros(1));
            Assert.Throws<ArgumentException>(() => tracker.Update(onMeta));
            var split = new LossResult(zeros(1), zeros(Array.Empty<long>(), ScalarType.Float64), zeros(Array.Empty<long>(), ScalarType.Int64, meta), zeros(1));
            Assert.Throws<ArgumentException>(() => tracker.Update(split));
            var disposed = Uniform(3, 2);
            disposed.TokenCount.Dispose();
            Assert.ThrowsAny<Exception>(() => tracker.Update(disposed));
            Assert.Throws<ArgumentOutOfRangeException>(() => tracker.Update(1.0, 1, utf8Bytes: -1));
        }

        Assert.Equal(before, tracker.Snapshot());
        Assert.Equal(windowBefore, tracker.WindowSnapshot());
        using (var second = Uniform(2, 4)) tracker.Update(second);
        Assert.Equal(2, tracker.Updates);
        Assert.Equal(6, tracker.Tokens);
        Assert.Equal((4 * Math.Log(2) + 2 * Math.Log(4)) / 6, tracker.MeanNll, 12);
        Assert.Equal(2, tracker.WindowSnapshot().Updates);
    }

    [Fact]
    public void NonFiniteHostBatchIsSkippedAndLoggedAtOnce()
    {
        var logger = new RecordingLogger();
        using var tracker = new PerplexityTracker(logger);
        tracker.Update(2 * Ln2, 2);
        tracker.Update(double.NaN, 5, utf8Bytes: 10);
        tracker.Update(double.PositiveInfinity, 5);

        Assert.Equal(2, logger.Entries.Count);
        Assert.Contains("update 2", logger.Entries[0].Message);
        Assert.Contains("update 3", logger.Entries[1].Message);
        Assert.Equal(2, tracker.Tokens);
        Assert.Equal(2, tracker.SkippedBatches);
        Assert.Equal(2.0, tracker.Perplexity, 12);
    }

    [Fact]
    public void MergeEqualsTheUnionAndIsAssociative()
    {
        double[] nll = [3.0, 7.5, 0.25, 12.0, 4.0, 9.0];
        long[] tokens = [2, 5, 1, 8, 3, 6];
        PerplexityTracker Over(params int[] indices)
        {
            var t = new PerplexityTracker();
            foreach (int i in indices)
            {
                if (i % 2 == 0) t.Update(nll[i], tokens[i], utf8Bytes: 4 * tokens[i]);
                else using (var r = Uniform(tokens[i], i + 2)) t.Update(r, utf8Bytes: 4 * tokens[i]);
            }
            return t;
        }

        using var all = Over(0, 1, 2, 3, 4, 5);
        using var a1 = Over(0, 1);
        using var b1 = Over(2, 3);
        using var c1 = Over(4, 5);
        a1.Merge(b1);
        a1.Merge(c1);                         // (a + b) + c
        using var a2 = Over(0, 1);
        using var b2 = Over(2, 3);
        using var c2 = Over(4, 5);
        b2.Merge(c2);
        a2.Merge(b2);                         // a + (b + c)

        foreach (var merged in new[] { a1.Snapshot(), a2.Snapshot() })
        {
            var union = all.Snapshot();
            Assert.Equal(union.Updates, merged.Updates);
            Assert.Equal(union.Tokens, merged.Tokens);
            Assert.Equal(union.Utf8Bytes, merged.Utf8Bytes);
            Assert.Equal(union.NllSum, merged.NllSum, 12);
            Assert.Equal(union.Perplexity, merged.Perplexity, 12);
        }
        Assert.Equal(9, c2.Tokens);           // merging leaves the other tracker unchanged
    }

    [Fact]
    public void MergeRejectsItselfAndCombinesTextCountsOnlyWhenComplete()
    {
        using var a = new PerplexityTracker();
        Assert.Throws<ArgumentException>(() => a.Merge(a));
        a.Update(1.0, 1, utf8Bytes: 3);
        using var b = new PerplexityTracker();
        b.Update(1.0, 1);
        a.Merge(b);
        Assert.Null(a.Snapshot().Utf8Bytes);
        Assert.True(double.IsNaN(a.BitsPerByte));
    }

    [Fact]
    public void TrackersWithOtherWindowSizesMergeTheirTotalsAndKeepTheirWindows()
    {
        using var a = new PerplexityTracker(windowSize: 2);
        using var b = new PerplexityTracker(windowSize: 7);
        a.Update(2.0, 1);
        a.Update(4.0, 1);
        a.Update(6.0, 3);
        using (var r = Uniform(4, 5)) b.Update(r);
        a.Merge(b);
        Assert.Equal((4L, 9L), (a.Updates, a.Tokens));
        Assert.Equal(12.0 + 4 * Math.Log(5), a.Snapshot().NllSum, 9);
        Assert.Equal((2L, 4L, 10.0), (a.WindowSnapshot().Updates, a.WindowSnapshot().Tokens, a.WindowSnapshot().NllSum));
        Assert.Equal((1L, 4L), (b.WindowSnapshot().Updates, b.Tokens));
    }

    [Fact]
    public void SnapshotRoundTripsThroughJsonAndResumes()
    {
        using var uninterrupted = new PerplexityTracker();
        using var first = new PerplexityTracker();
        foreach (var t in new[] { uninterrupted, first })
        {
            using (var r = Uniform(4, 3)) t.Update(r, utf8Bytes: 9, words: 2);
            t.Update(double.NaN, 2, utf8Bytes: 1, words: 1);
            t.Update(1.5, 2, utf8Bytes: 5, words: 1);
        }

        string json = JsonSerializer.Serialize(first.Snapshot());
        var restored = JsonSerializer.Deserialize<PerplexitySnapshot>(json);
        Assert.Equal(first.Snapshot(), restored);
        Assert.DoesNotContain("Perplexity", json);   // only totals are stored; metrics are derived

        using var resumed = new PerplexityTracker();
        resumed.Restore(restored!);
        foreach (var t in new[] { uninterrupted, resumed })
            using (var r = Uniform(3, 7)) t.Update(r, utf8Bytes: 6, words: 3);

        Assert.Equal(uninterrupted.Snapshot(), resumed.Snapshot());
        Assert.Equal(4, resumed.Updates);
        Assert.Equal(1, resumed.SkippedBatches);
    }

    [Fact]
    public void RestoreRejectsImpossibleTotals()
    {
        using var tracker = new PerplexityTracker();
        Assert.Throws<ArgumentException>(() => tracker.Restore(new PerplexitySnapshot(1, -1, 0, 0)));
        Assert.Throws<ArgumentException>(() => tracker.Restore(new PerplexitySnapshot(1, 1, double.NaN, 0)));
        Assert.Throws<ArgumentException>(() => tracker.Restore(new PerplexitySnapshot(1, 1, 1, 2)));
        Assert.Throws<ArgumentException>(() => tracker.Restore(new PerplexitySnapshot(1, 0, 2.5, 0)));
        Assert.Throws<ArgumentException>(() => tracker.Restore(new PerplexitySnapshot(0, 3, 2.5, 0)));
        Assert.Throws<ArgumentException>(() => tracker.Restore(new PerplexitySnapshot(2, 3, 2.5, 0, Utf8Bytes: -1)));
    }

    [Fact]
    public void ResetClearsEverything()
    {
        using var tracker = new PerplexityTracker();
        using (var r = Uniform(4, 3)) tracker.Update(r, utf8Bytes: 4);
        tracker.Reset();
        Assert.Equal(PerplexitySnapshot.Empty, tracker.Snapshot());
        Assert.Equal(PerplexitySnapshot.Empty, tracker.WindowSnapshot());
        tracker.Update(2 * Ln2, 2);
        Assert.Equal(2.0, tracker.Perplexity, 12);
    }

    [Fact]
    public void HostUpdateRejectsImpossibleValues()
    {
        using var tracker = new PerplexityTracker();
        Assert.Throws<ArgumentOutOfRangeException>(() => tracker.Update(1.0, -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => tracker.Update(-1.0, 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => tracker.Update(1.0, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => tracker.Update(1.0, 1, utf8Bytes: -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new PerplexityTracker(windowSize: 0));
        Assert.Equal(0, tracker.Updates);
    }

    [Fact]
    public void BitsPerByteAndWordPerplexityMatchHandComputedValues()
    {
        using var tracker = new PerplexityTracker();
        // "the cat sat" = 11 bytes, 3 words, 4 tokens with NLL 1, 2, 3, 4 nats; then "on a mat!" = 9 bytes, 3 words, 2 tokens, 5 nats.
        tracker.Update(10.0, 4, utf8Bytes: 11, words: 3);
        tracker.Update(5.0, 2, utf8Bytes: 9, words: 3);

        Assert.Equal(15.0 / (Math.Log(2) * 20), tracker.BitsPerByte, 12);   // 1.0820…
        Assert.Equal(Math.Exp(15.0 / 6), tracker.WordPerplexity, 12);      // 12.18…
        Assert.Equal(1.0820212806667563, tracker.BitsPerByte, 12);
        Assert.Equal(12.182493960703473, tracker.WordPerplexity, 10);
    }

    [Fact]
    public void TextNormalisersNeedEveryUpdateToReportCounts()
    {
        using var tracker = new PerplexityTracker();
        Assert.True(double.IsNaN(tracker.BitsPerByte));
        tracker.Update(10.0, 4, utf8Bytes: 11);
        tracker.Update(5.0, 2);
        Assert.True(double.IsNaN(tracker.BitsPerByte));
        Assert.True(double.IsNaN(tracker.WordPerplexity));
        Assert.Null(tracker.Snapshot().Utf8Bytes);
    }

    [Fact]
    public void WindowCoversTheLastUpdatesOnly()
    {
        using var tracker = new PerplexityTracker(windowSize: 2);
        tracker.Update(4 * Math.Log(10), 4);          // perplexity 10
        using (var r = Uniform(2, 2)) tracker.Update(r); // perplexity 2
        tracker.Update(2 * Math.Log(4), 2);           // perplexity 4

        var window = tracker.WindowSnapshot();
        Assert.Equal(2, window.Updates);
        Assert.Equal(4, window.Tokens);
        Assert.Equal(Math.Sqrt(8), window.Perplexity, 12);
        Assert.Equal(8, tracker.Tokens);
        Assert.Equal(Math.Exp((4 * Math.Log(10) + 2 * Ln2 + 2 * Math.Log(4)) / 8), tracker.Perplexity, 12);
    }

    [Fact]
    public void StateSurvivesTheCallersDisposeScope()
    {
        PerplexityTracker tracker;
        using (var scope = NewDisposeScope())
        {
            tracker = new PerplexityTracker();
            using var r = Uniform(3, 5);
            tracker.Update(r);
        }
        using (tracker)
        {
            using (var r = Uniform(3, 5)) tracker.Update(r);
            Assert.Equal(6, tracker.Tokens);
            Assert.Equal(5.0, tracker.Perplexity, 12);
        }
        Assert.Throws<ObjectDisposedException>(() => tracker.Perplexity);
    }

    [Fact]
    public void UpdatesAndReadsDoNotLeak()
    {
        using var tracker = new PerplexityTracker(windowSize: 4);
        using var loss = new TokenCrossEntropy(new CrossEntropyOptions { Causal = true });
        int i = 0;
        LeakCheck.AssertNoGrowth(() =>
        {
            using var scope = NewDisposeScope();
            var logits = randn(2, 5, 7);
            if (++i % 7 == 0) logits[0, 1, 1] = tensor(float.NaN);
            using var result = loss.Compute(logits, randint(0, 7, [2, 5]));
            tracker.Update(result, utf8Bytes: 20);
            tracker.Update(3.0, 2);
            if (i % 50 == 0) _ = tracker.WindowSnapshot().Perplexity + tracker.Perplexity;
        }, 300);
        using var other = new PerplexityTracker();
        LeakCheck.AssertNoGrowth(() => { other.Merge(tracker); other.Reset(); other.Restore(tracker.Snapshot()); }, 20);
    }
}
