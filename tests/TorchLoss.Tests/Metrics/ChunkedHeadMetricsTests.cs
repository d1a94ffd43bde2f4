using TorchLoss.Metrics;
using static TorchSharp.torch;

namespace TorchLoss.Tests.Metrics;

/// <summary>
/// <see cref="ChunkedHeadMetrics"/> against the same metrics on the plain logits hidden·weightᵀ: with GPT-2's vocabulary a
/// chunk holds 83 rows, so 120 positions span two chunks (and each sequence of 60 is its own chunk for a causal tracker).
/// </summary>
public class ChunkedHeadMetricsTests
{
    private const long Vocab = 50257;
    private const long Width = 8;

    private static (Tensor Hidden, Tensor Weight, Tensor Labels, Tensor Mask) Inputs(long batch = 2, long time = 60, ulong seed = 3)
    {
        var gen = new TorchSharp.torch.Generator(seed);
        var hidden = randn([batch, time, Width], generator: gen) * 2;
        var weight = randn([Vocab, Width], generator: gen);
        // A few labels from a small range so that some predictions are right.
        var labels = randint(0, 40, [batch, time], generator: gen);
        labels[0, 5] = tensor(LossDefaults.IgnoreIndex);
        var mask = rand([batch, time], generator: gen).ge(0.1);
        return (hidden, weight, labels, mask);
    }

    [Fact]
    public void Score_EqualsThePlainLogits_Causal()
    {
        using var scope = NewDisposeScope();
        var (hidden, weight, labels, mask) = Inputs();
        // Make predictions right on some positions: long weight rows for the labels, and the hidden state of t along label t+1's row.
        weight.narrow(0, 0, 40).mul_(4);
        hidden[1, TensorIndex.Slice(0, 30)] = weight.index_select(0, labels[1, TensorIndex.Slice(1, 31)]) * 3;
        using var scores = ChunkedHeadMetrics.Score(hidden, weight, labels, mask, causal: true);

        var logp = hidden.matmul(weight.t())[.., ..^1].log_softmax(-1);
        var target = labels[.., 1..];
        var counted = target.ne(LossDefaults.IgnoreIndex).logical_and(mask[.., 1..]);
        var safe = target.masked_fill(counted.logical_not(), 0);
        var nll = logp.gather(-1, safe.unsqueeze(-1)).squeeze(-1).neg().masked_fill(counted.logical_not(), 0);
        var (top, prediction) = logp.max(-1);

        Assert.Equal([2L, 60L], scores.Nll.shape);
        Assert.True(scores.Counted[.., ..^1].eq(counted).all().item<bool>());
        Assert.False(scores.Counted.select(1, -1).any().item<bool>());
        Assert.True(scores.Nll[.., ..^1].to(ScalarType.Float32).allclose(nll, rtol: 1e-6, atol: 1e-6));
        Assert.True(scores.Confidence[.., ..^1].to(ScalarType.Float32).allclose(top.exp().masked_fill(counted.logical_not(), 0), rtol: 1e-6, atol: 1e-7));
        Assert.True(scores.Correct[.., ..^1].eq(prediction.eq(safe).logical_and(counted)).all().item<bool>());
        Assert.True(scores.Correct.sum().item<long>() >= 20, "the test should have right predictions");
    }

    [Fact]
    public void Score_NllEqualsTheChunkedLossPerToken()
    {
        using var scope = NewDisposeScope();
        var (hidden, weight, labels, _) = Inputs(batch: 1, time: 120);
        var flatHidden = hidden.reshape(-1, Width);
        var flatLabels = labels.reshape(-1);
        using var scores = ChunkedHeadMetrics.Score(flatHidden, weight, flatLabels);
        using var loss = new ChunkedLinearCrossEntropy(new CrossEntropyOptions { Reduction = nn.Reduction.None });
        using var _ = no_grad();
        var perToken = loss.forward(flatHidden, weight, flatLabels);
        Assert.True(scores.Nll.to(ScalarType.Float32).allclose(perToken, rtol: 1e-5, atol: 1e-5));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void UpdateCalibration_EqualsTheTrackerOnFullLogits(bool causal)
    {
        using var scope = NewDisposeScope();
        var (hidden, weight, labels, mask) = Inputs();
        var options = new CalibrationOptions { Bins = 10, TopK = 5, Causal = causal };
        using var plain = new CalibrationTracker(options);
        using var chunked = new CalibrationTracker(options);
        plain.Update(hidden.matmul(weight.t()), labels, mask);
        ChunkedHeadMetrics.UpdateCalibration(chunked, hidden, weight, labels, mask);
        var (p, c) = (plain.Snapshot(), chunked.Snapshot());

        Assert.True(chunked.Updates >= 2, "the inputs should span more than one chunk");
        Assert.Equal(p.Tokens, c.Tokens);
        Assert.Equal(p.Top1Correct, c.Top1Correct);
        Assert.Equal(p.TopKCorrect, c.TopKCorrect);
        Assert.Equal(p.BinCounts, c.BinCounts);
        Assert.Equal(p.BinCorrect, c.BinCorrect);
        Assert.Equal(p.ConfidenceSum, c.ConfidenceSum, 1e-9 * p.Tokens);
        Assert.Equal(p.EntropySum, c.EntropySum, 1e-9 * p.Tokens);
        Assert.Equal(p.BrierSum, c.BrierSum, 1e-9 * p.Tokens);
    }

    [Fact]
    public void EvaluateHead_EqualsTheEvaluatorOnLogits()
    {
        using var scope = NewDisposeScope();
        var gen = new TorchSharp.torch.Generator(5);
        var embedding = randn([Vocab, Width], generator: gen);
        var weight = randn([Vocab, Width], generator: gen);
        var tokens = randint(0, 300, [260], generator: gen);
        Tensor Hidden(Tensor ids) => embedding.index_select(0, ids.flatten()).reshape(ids.shape[0], ids.shape[1], Width);
        var evaluator = new PerplexityEvaluator(contextLength: 64, stride: 48, batchSize: 2);
        var calibrationOptions = new CalibrationOptions { Causal = true };
        using var plainCalibration = new CalibrationTracker(calibrationOptions);
        using var headCalibration = new CalibrationTracker(calibrationOptions);

        var plain = evaluator.Evaluate(ids => Hidden(ids).matmul(weight.t()), tokens, onBatch: b => plainCalibration.Update(b.Logits, b.Labels, b.LossMask));
        var head = evaluator.EvaluateHead(Hidden, weight, tokens, headCalibration);

        Assert.Equal(plain.Tokens, head.Tokens);
        Assert.Equal(plain.Updates, head.Updates);
        Assert.Equal(plain.NllSum, head.NllSum, 1e-5 * plain.NllSum);
        var (p, c) = (plainCalibration.Snapshot(), headCalibration.Snapshot());
        Assert.Equal(p.Tokens, c.Tokens);
        Assert.Equal(p.Top1Correct, c.Top1Correct);
        Assert.Equal(p.BinCounts, c.BinCounts);
        Assert.Equal(p.ConfidenceSum, c.ConfidenceSum, 1e-9 * p.Tokens);
    }

    [Fact]
    public void RefusesMismatchedInputs()
    {
        using var scope = NewDisposeScope();
        var (hidden, weight, labels, _) = Inputs(batch: 1, time: 8);
        using var tracker = new CalibrationTracker();
        Assert.Throws<ArgumentException>(() => ChunkedHeadMetrics.UpdateCalibration(tracker, hidden, weight, labels[.., 1..]));
        Assert.Throws<ArgumentException>(() => ChunkedHeadMetrics.Score(hidden, weight[.., 1..], labels));
        var evaluator = new PerplexityEvaluator(4, 4);
        Assert.Throws<ArgumentException>(() => evaluator.EvaluateHead(h => h, weight, arange(10), new CalibrationTracker()));
    }

    [Fact]
    public void LeavesNoLiveTensors()
    {
        var (hidden, weight, labels, mask) = Inputs();
        using var tracker = new CalibrationTracker(new CalibrationOptions { Causal = true });
        LeakCheck.AssertNoGrowth(() =>
        {
            using var scores = ChunkedHeadMetrics.Score(hidden, weight, labels, mask, causal: true);
            ChunkedHeadMetrics.UpdateCalibration(tracker, hidden, weight, labels, mask);
        }, 5);
    }
}
