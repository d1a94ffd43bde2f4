using TorchSharp;
using static TorchLoss.Tests.TestTensors;
using static TorchSharp.torch;

namespace TorchLoss.Tests.CrossEntropy;

/// <summary>The next-token loss: its shift, its token count, and the normalizer for gradient accumulation.</summary>
public class CausalCrossEntropyTests
{
    private const long Vocab = 6;

    // Rows with different numbers of learned tokens, so a per-micro-batch mean would weight them wrongly.
    private static Tensor Labels() => tensor(new long[,]
    {
        { 1, 2, 3, 4, 5, 0 },
        { 2, -100, -100, -100, -100, -100 },
        { 5, 4, -100, 3, 2, 1 },
        { 0, 0, 1, 1, 2, -100 },
    });

    private static Tensor Mask() => tensor(new[,]
    {
        { true, true, true, true, true, true },
        { true, true, true, true, true, true },
        { true, false, true, true, false, true },
        { true, true, true, true, true, true },
    });

    public static TheoryData<CrossEntropyOptions> OptionSets() => new()
    {
        new CrossEntropyOptions(),
        new CrossEntropyOptions { Reduction = nn.Reduction.Sum, LabelSmoothing = 0.1 },
        new CrossEntropyOptions { LabelSmoothing = 0.9, Smoothing = SmoothingKind.OtherClasses, ZLossWeight = 1e-2 },
    };

    [Theory]
    [MemberData(nameof(OptionSets))]
    public void EqualsTokenCrossEntropyOnManuallyShiftedInputs(CrossEntropyOptions options)
    {
        using var scope = NewDisposeScope();
        var logits = Logits([4, 6, Vocab], ScalarType.Float64, seed: 41);
        var labels = Labels();
        var mask = Mask();
        using var causal = new TokenCrossEntropy(options with { Causal = true });
        using var token = new TokenCrossEntropy(options);

        using var ours = causal.Compute(logits, labels, mask);
        using var shifted = token.Compute(logits[.., ..^1, ..], labels[.., 1..], mask[.., 1..]);

        AssertClose(shifted.Loss, ours.Loss, 1e-14);
        Assert.Equal(shifted.TokenCount.item<long>(), ours.TokenCount.item<long>());
        Assert.Equal(Scalar(shifted.NllSum), Scalar(ours.NllSum), 12);
    }

    [Fact]
    public void PerTokenLossesAreAlignedWithThePredictingPosition()
    {
        using var scope = NewDisposeScope();
        var logits = Logits([4, 6, Vocab], ScalarType.Float64, seed: 42);
        var options = new CrossEntropyOptions { Reduction = nn.Reduction.None };
        using var causal = new TokenCrossEntropy(options with { Causal = true });
        using var token = new TokenCrossEntropy(options);

        var perToken = causal.forward(logits, Labels());

        Assert.Equal([4L, 6L], perToken.shape);
        AssertClose(token.forward(logits[.., ..^1, ..], Labels()[.., 1..]), perToken[.., ..^1], 1e-15);
        Assert.All(Values(perToken[.., -1]), v => Assert.Equal(0.0, v)); // the last position has no next token
    }

    [Fact]
    public void CountTokensCountsLearnedNextTokens()
    {
        using var scope = NewDisposeScope();
        using var causal = new TokenCrossEntropy(new CrossEntropyOptions { Causal = true });

        // Row by row: 5, 0, 2 (positions 3 and 5; 2 is ignored, 1 and 4 masked), 4.
        Assert.Equal(11, new CrossEntropyOptions { Causal = true }.CountTokens(Labels(), Mask()));
        Assert.Equal(5 + 0 + 4 + 4, new CrossEntropyOptions { Causal = true }.CountTokens(Labels()));
        using var result = causal.Compute(Logits([4, 6, Vocab], ScalarType.Float32, seed: 43), Labels(), Mask());
        Assert.Equal(11, result.TokenCount.item<long>());
    }

    [Fact]
    public void AccumulatingMicroBatchesWithTheTotalTokenCountEqualsTheFullBatchGradient()
    {
        using var scope = NewDisposeScope();
        var logits = Logits([4, 6, Vocab], ScalarType.Float64, seed: 44);
        var labels = Labels();
        var mask = Mask();
        using var loss = new TokenCrossEntropy(new CrossEntropyOptions { Causal = true, LabelSmoothing = 0.1 });

        loss.Compute(logits, labels, mask).Loss.backward();
        var fullBatch = logits.grad!.clone();
        logits.grad!.zero_();

        var microBatches = new[] { (0, 1), (1, 3), (3, 4) };
        long normalizer = microBatches.Sum(m => new CrossEntropyOptions { Causal = true }.CountTokens(labels[m.Item1..m.Item2], mask[m.Item1..m.Item2]));
        foreach (var (from, to) in microBatches)
            loss.Compute(logits[from..to], labels[from..to], mask[from..to], normalizer).Loss.backward();

        Assert.True(fullBatch.eq(logits.grad!).all().item<bool>(), "accumulated gradient differs from the full-batch gradient");
    }

    [Fact]
    public void AccumulatingPerMicroBatchMeansDoesNotEqualTheFullBatchGradient()
    {
        // The reason the normalizer exists: the same micro-batches averaged separately weight tokens unequally.
        using var scope = NewDisposeScope();
        var logits = Logits([4, 6, Vocab], ScalarType.Float64, seed: 44);
        var labels = Labels();
        using var loss = new TokenCrossEntropy(new CrossEntropyOptions { Causal = true });

        loss.Compute(logits, labels).Loss.backward();
        var fullBatch = logits.grad!.clone();
        logits.grad!.zero_();
        foreach (var (from, to) in new[] { (0, 1), (1, 3), (3, 4) })
            (loss.Compute(logits[from..to], labels[from..to]).Loss / 3).backward();

        Assert.False(fullBatch.allclose(logits.grad!, rtol: 1e-3, atol: 1e-6));
    }

    [Fact]
    public void AccumulatedParameterGradientsMatchTheFullBatchThroughAModel()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(45);
        var embedding = (randn([Vocab, 5], ScalarType.Float64, generator: generator) * 0.5).requires_grad_(true);
        var head = (randn([5, Vocab], ScalarType.Float64, generator: generator) * 0.5).requires_grad_(true);
        var ids = Labels().clamp_min(0);
        var labels = Labels();
        using var loss = new TokenCrossEntropy(new CrossEntropyOptions { Causal = true, LabelSmoothing = 0.6, Smoothing = SmoothingKind.OtherClasses, ZLossWeight = 1e-3 });
        Tensor Forward(Tensor batch) => embedding[batch].tanh().matmul(head);

        loss.Compute(Forward(ids), labels).Loss.backward();
        var full = (Embedding: embedding.grad!.clone(), Head: head.grad!.clone());
        embedding.grad!.zero_();
        head.grad!.zero_();

        var microBatches = new[] { (0, 2), (2, 3), (3, 4) };
        long normalizer = microBatches.Sum(m => new CrossEntropyOptions { Causal = true }.CountTokens(labels[m.Item1..m.Item2]));
        foreach (var (from, to) in microBatches)
            loss.Compute(Forward(ids[from..to]), labels[from..to], normalizer: normalizer).Loss.backward();

        // Same terms, summed in another order: equal up to rounding.
        AssertClose(full.Embedding, embedding.grad!, 1e-14, "embedding gradient");
        AssertClose(full.Head, head.grad!, 1e-14, "head gradient");
    }
}
