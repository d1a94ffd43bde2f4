using TorchSharp;
using static TorchLoss.Tests.TestTensors;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TorchLoss.Tests.CrossEntropy;

/// <summary>
/// <see cref="CrossEntropyOptions.ClassWeights"/> against torch's <c>functional.cross_entropy(weight: w)</c>, on both
/// backends and in all three modules: loss and gradients for every reduction, smoothing and ignore index.
/// </summary>
public class ClassWeightTests
{
    public static TheoryData<CrossEntropyBackend, ScalarType, nn.Reduction, double, double> Cases()
    {
        var data = new TheoryData<CrossEntropyBackend, ScalarType, nn.Reduction, double, double>();
        foreach (var backend in new[] { CrossEntropyBackend.LibTorch, CrossEntropyBackend.Fused })
            foreach (var dtype in new[] { ScalarType.Float32, ScalarType.Float64 })
                foreach (var reduction in new[] { nn.Reduction.None, nn.Reduction.Sum, nn.Reduction.Mean })
                    foreach (double smoothing in new[] { 0.0, 0.1, 0.7 })
                        foreach (double ignored in new[] { 0.0, 0.3 })
                            data.Add(backend, dtype, reduction, smoothing, ignored);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void TokenCrossEntropyMatchesTorch(CrossEntropyBackend backend, ScalarType dtype, nn.Reduction reduction, double smoothing, double ignoredFraction)
    {
        using var scope = NewDisposeScope();
        const long classes = 9;
        var logits = Logits([3, 5, classes], dtype, seed: 11);
        var target = Targets([3, 5], classes, seed: 12, ignoredFraction);
        target[0, 0] = tensor(2L); // class 2 has weight 0 below: a counted zero-weight token
        target[0, 1] = tensor(4L);
        var options = new CrossEntropyOptions { LabelSmoothing = smoothing, Reduction = reduction, ClassWeights = RandomWeights(classes, seed: 13), Backend = backend };
        using var module = new TokenCrossEntropy(options);

        var ours = module.forward(logits, target);
        var torchLogits = logits.detach().clone().requires_grad_(true);
        var theirs = F.cross_entropy(torchLogits.movedim(new long[] { -1 }, new long[] { 1 }), target, Weights(options, dtype), ignore_index: options.IgnoreIndex, reduction: reduction, label_smoothing: smoothing);

        AssertSameLossAndGradient(theirs, torchLogits, ours, logits);
    }

    [Theory]
    [InlineData(ScalarType.Float32, 2e-5)]
    [InlineData(ScalarType.Float64, 1e-12)]
    public void FusedKernelMatchesTorchOnRowsOfSeveralBlocksInParallel(ScalarType dtype, double tolerance)
    {
        using var scope = NewDisposeScope();
        const long classes = 5000; // more than one 16 KiB block per row, and rows split across tasks
        var logits = Logits([40, classes], dtype, seed: 14);
        var target = Targets([40], classes, seed: 15, ignoreFraction: 0.1);
        var options = new CrossEntropyOptions { LabelSmoothing = 0.1, ClassWeights = RandomWeights(classes, seed: 16), Backend = CrossEntropyBackend.Fused };
        using var module = new TokenCrossEntropy(options);
        var ours = module.forward(logits, target);
        var torchLogits = logits.detach().clone().requires_grad_(true);
        var theirs = F.cross_entropy(torchLogits, target, Weights(options, dtype), ignore_index: options.IgnoreIndex, label_smoothing: 0.1);
        ours.backward();
        theirs.backward();
        AssertClose(theirs, ours, tolerance, "loss");
        AssertClose(torchLogits.grad!, logits.grad!, tolerance, "gradient");
    }

    [Theory]
    [InlineData(CrossEntropyBackend.LibTorch, nn.Reduction.Mean, 0.1)]
    [InlineData(CrossEntropyBackend.Fused, nn.Reduction.Mean, 0.1)]
    [InlineData(CrossEntropyBackend.Fused, nn.Reduction.None, 0.0)]
    [InlineData(CrossEntropyBackend.LibTorch, nn.Reduction.Sum, 0.3)]
    public void CausalCrossEntropyMatchesTorchOnShiftedLabels(CrossEntropyBackend backend, nn.Reduction reduction, double smoothing)
    {
        using var scope = NewDisposeScope();
        const long vocab = 13;
        var logits = Logits([2, 7, vocab], ScalarType.Float64, seed: 21);
        var labels = Targets([2, 7], vocab, seed: 22, ignoreFraction: 0.25);
        labels[0, 1] = tensor(0L); // weight 0
        var options = new CrossEntropyOptions { LabelSmoothing = smoothing, Reduction = reduction, ClassWeights = RandomWeights(vocab, seed: 23), Backend = backend };
        using var module = new TokenCrossEntropy(options with { Causal = true });

        var ours = module.forward(logits, labels);
        var torchLogits = logits.detach().clone().requires_grad_(true);
        var theirs = F.cross_entropy(torchLogits[.., ..^1, ..].movedim(new long[] { -1 }, new long[] { 1 }), labels[.., 1..], Weights(options, ScalarType.Float64),
            ignore_index: options.IgnoreIndex, reduction: reduction, label_smoothing: smoothing);
        if (reduction == nn.Reduction.None)
            theirs = cat([theirs, zeros([2, 1], ScalarType.Float64)], 1); // the last position predicts nothing

        AssertSameLossAndGradient(theirs, torchLogits, ours, logits);
    }

    [Theory]
    [InlineData(nn.Reduction.Mean, 0.0, 0.3)]
    [InlineData(nn.Reduction.Mean, 0.2, 0.3)]
    [InlineData(nn.Reduction.Sum, 0.1, 0.0)]
    [InlineData(nn.Reduction.None, 0.7, 0.3)]
    public void ChunkedLinearCrossEntropyMatchesTorch(nn.Reduction reduction, double smoothing, double ignoredFraction)
    {
        using var scope = NewDisposeScope();
        const long rows = 19, width = 6, classes = 23;
        var gen = new Generator(31);
        var hidden = randn([rows, width], ScalarType.Float64, generator: gen).requires_grad_(true);
        var weight = randn([classes, width], ScalarType.Float64, generator: gen).requires_grad_(true);
        var target = Targets([rows], classes, seed: 32, ignoredFraction);
        var options = new CrossEntropyOptions { LabelSmoothing = smoothing, Reduction = reduction, ClassWeights = RandomWeights(classes, seed: 33) };
        using var head = new ChunkedLinearCrossEntropy(options, chunkSize: 4);
        Tensor? gradOutput = reduction == nn.Reduction.None ? rand([rows], ScalarType.Float64, generator: gen) : null;

        var ours = head.forward(hidden, weight, target);
        if (gradOutput is null) ours.backward(); else ours.backward([gradOutput]);
        var (oursHidden, oursWeight) = (hidden.grad!.clone(), weight.grad!.clone());
        hidden.grad!.zero_();
        weight.grad!.zero_();
        var theirs = F.cross_entropy(hidden.mm(weight.t()), target, Weights(options, ScalarType.Float64),
            ignore_index: options.IgnoreIndex, reduction: reduction, label_smoothing: smoothing);
        if (gradOutput is null) theirs.backward(); else theirs.backward([gradOutput]);

        AssertClose(theirs, ours, 1e-10, "loss");
        AssertClose(hidden.grad!, oursHidden, 1e-10, "hidden gradient");
        AssertClose(weight.grad!, oursWeight, 1e-10, "weight gradient");
    }

    /// <summary>
    /// OtherClasses is Uniform with ε' = ε·K/(K − 1), weighted the same way: Σ_j w_j·q_j·(−log p_j) for the
    /// OtherClasses target q. Also for ε' > 1, which torch cannot express, on both backends.
    /// </summary>
    [Theory]
    [InlineData(CrossEntropyBackend.LibTorch, 0.1)]
    [InlineData(CrossEntropyBackend.Fused, 0.1)]
    [InlineData(CrossEntropyBackend.LibTorch, 0.8)]
    [InlineData(CrossEntropyBackend.Fused, 0.8)]
    public void OtherClassesIsTheWeightedSumOverItsTargetDistribution(CrossEntropyBackend backend, double epsilon)
    {
        using var scope = NewDisposeScope();
        const long classes = 4;
        var logits = Logits([6, 5, classes], ScalarType.Float64, seed: 41);
        var target = Targets([6, 5], classes, seed: 42, ignoreFraction: 0.2);
        var weights = RandomWeights(classes, seed: 43);
        var options = new CrossEntropyOptions { LabelSmoothing = epsilon, Smoothing = SmoothingKind.OtherClasses, ClassWeights = weights, Reduction = nn.Reduction.Sum, Backend = backend };
        using var module = new TokenCrossEntropy(options);

        var ours = module.forward(logits, target);

        var counted = target.ne(-100);
        var safe = target.masked_fill(counted.logical_not(), 0);
        var q = full([6, 5, classes], epsilon / (classes - 1), ScalarType.Float64).scatter(-1, safe.unsqueeze(-1), full([6, 5, 1], 1 - epsilon, ScalarType.Float64));
        var perToken = -(q * tensor(weights.ToArray(), ScalarType.Float64) * F.log_softmax(logits.detach(), -1)).sum(-1);
        var expected = where(counted, perToken, zeros_like(perToken)).sum();
        AssertClose(expected, ours, 1e-12, "loss");
    }

    /// <summary>What torch has no counterpart for (z-loss, masks, normalisers, ε' > 1): the fused kernel against the libtorch path.</summary>
    [Theory]
    [InlineData(nn.Reduction.Mean, 0.1, SmoothingKind.Uniform, false)]
    [InlineData(nn.Reduction.Sum, 0.6, SmoothingKind.OtherClasses, true)]
    [InlineData(nn.Reduction.None, 0.2, SmoothingKind.Uniform, false)]
    [InlineData(nn.Reduction.Mean, 0.0, SmoothingKind.Uniform, true)]
    public void FusedMatchesLibTorchWithZLossMasksAndNormalizers(nn.Reduction reduction, double epsilon, SmoothingKind kind, bool withNormalizer)
    {
        using var scope = NewDisposeScope();
        const long classes = 6;
        var target = Targets([4, 7], classes, seed: 71, ignoreFraction: 0.2);
        var mask = rand([4, 7], generator: new Generator(72)).gt(0.2);
        long? normalizer = withNormalizer ? 30 : null;
        var options = new CrossEntropyOptions
        {
            LabelSmoothing = epsilon, Smoothing = kind, ZLossWeight = 1e-3, Reduction = reduction, ClassWeights = RandomWeights(classes, seed: 73),
        };
        var results = new List<(LossResult Result, Tensor Gradient)>();
        foreach (var backend in new[] { CrossEntropyBackend.LibTorch, CrossEntropyBackend.Fused })
        {
            var logits = Logits([4, 7, classes], ScalarType.Float64, seed: 74);
            using var module = new TokenCrossEntropy(options with { Backend = backend });
            var result = module.Compute(logits, target, mask, normalizer);
            result.Loss.backward(reduction == nn.Reduction.None ? [rand([4, 7], ScalarType.Float64, generator: new Generator(75))] : null);
            results.Add((result, logits.grad!));
        }
        var (expected, actual) = (results[0], results[1]);
        AssertClose(expected.Result.Loss, actual.Result.Loss, 1e-12, "loss");
        AssertClose(expected.Gradient, actual.Gradient, 1e-12, "gradient");
        AssertClose(expected.Result.NllSum, actual.Result.NllSum, 1e-12, "NllSum");
        AssertClose(expected.Result.ZLossSum, actual.Result.ZLossSum, 1e-12, "ZLossSum");
    }

    [Fact]
    public void NllSumAndTokenCountStayUnweighted()
    {
        using var scope = NewDisposeScope();
        var logits = Logits([4, 6, 10], ScalarType.Float32, seed: 51);
        var target = Targets([4, 6], 10, seed: 52, ignoreFraction: 0.2);
        foreach (var backend in new[] { CrossEntropyBackend.LibTorch, CrossEntropyBackend.Fused })
        {
            using var plain = new TokenCrossEntropy(new CrossEntropyOptions { Causal = true, Backend = backend });
            using var weighted = new TokenCrossEntropy(new CrossEntropyOptions { Causal = true, Backend = backend, LabelSmoothing = 0.1, ClassWeights = RandomWeights(10, seed: 53) });
            using var a = plain.Compute(logits, target);
            using var b = weighted.Compute(logits, target);
            AssertClose(a.NllSum, b.NllSum, 1e-6, $"NllSum ({backend})");
            Assert.Equal(a.TokenCount.item<long>(), b.TokenCount.item<long>());
            Assert.NotEqual(a.Loss.item<float>(), b.Loss.item<float>());
        }
    }

    [Fact]
    public void WeightsOfOneChangeNothing()
    {
        using var scope = NewDisposeScope();
        var logits = Logits([5, 8], ScalarType.Float64, seed: 61);
        var target = Targets([5], 8, seed: 62, ignoreFraction: 0.2);
        var options = new CrossEntropyOptions { LabelSmoothing = 0.2, ZLossWeight = 1e-3 };
        using var plain = new TokenCrossEntropy(options);
        using var weighted = new TokenCrossEntropy(options with { ClassWeights = Enumerable.Repeat(1.0, 8).ToArray() });
        AssertClose(plain.forward(logits, target), weighted.forward(logits, target), 1e-14);
    }

    [Theory]
    [InlineData(new[] { 1.0, -0.5, 2.0 }, "≥ 0", "-0.5", "class 1")]
    [InlineData(new[] { 1.0, double.NaN, 2.0 }, "finite", "NaN")]
    [InlineData(new[] { double.PositiveInfinity, 1.0, 2.0 }, "finite")]
    [InlineData(new[] { 0.0, 0.0, 0.0 }, "zero for every class")]
    [InlineData(new double[0], "empty")]
    public void BadWeightsAreRejectedAtConstruction(double[] weights, params string[] mentions)
    {
        var error = Assert.ThrowsAny<ArgumentException>(() => new TokenCrossEntropy(new CrossEntropyOptions { ClassWeights = weights }));
        Assert.Contains("ClassWeights", error.Message);
        foreach (string mention in mentions) Assert.Contains(mention, error.Message);
    }

    [Fact]
    public void OnlyTheIgnoredClassWeighedIsRejected()
    {
        var error = Assert.Throws<ArgumentException>(() => new TokenCrossEntropy(new CrossEntropyOptions { Causal = true, IgnoreIndex = 0, ClassWeights = [3.0, 0.0, 0.0] }));
        Assert.Contains("zero for every class that can be counted", error.Message);
    }

    [Fact]
    public void WeightsOfTheWrongLengthNameBothCounts()
    {
        using var scope = NewDisposeScope();
        var options = new CrossEntropyOptions { ClassWeights = [1.0, 2.0, 3.0] };
        using var loss = new TokenCrossEntropy(options);
        var error = Assert.Throws<ArgumentException>(() => loss.forward(randn(2, 4), tensor(new long[] { 0, 1 })));
        Assert.Contains("3 weights", error.Message);
        Assert.Contains("4 classes", error.Message);
        using var head = new ChunkedLinearCrossEntropy(options);
        error = Assert.Throws<ArgumentException>(() => head.forward(randn(2, 5), randn(4, 5), tensor(new long[] { 0, 1 })));
        Assert.Contains("weight shape [4, 5]", error.Message);
    }

    [Fact]
    public void AMeanOverCountedTokensThatAllWeighZeroIsRejected()
    {
        using var scope = NewDisposeScope();
        var options = new CrossEntropyOptions { ClassWeights = [0.0, 1.0, 1.0], LabelSmoothing = 0.1 };
        var logits = randn(3, 3);
        var target = tensor(new long[] { 0, -100, 0 }); // every counted token is class 0, weight 0
        foreach (var backend in new[] { CrossEntropyBackend.LibTorch, CrossEntropyBackend.Fused })
        {
            using var loss = new TokenCrossEntropy(options with { Backend = backend });
            var error = Assert.Throws<ArgumentException>(() => loss.forward(logits, target));
            Assert.Contains("class weight 0", error.Message);
            // A sum (or a normaliser) divides by nothing, so it stays valid, as in torch; so does a batch with nothing counted.
            using var sum = new TokenCrossEntropy(options with { Backend = backend, Reduction = nn.Reduction.Sum });
            Assert.True(double.IsFinite(sum.forward(logits, target).item<float>()));
            using var normalized = loss.Compute(logits, target, normalizer: 2);
            Assert.Equal(0.0, loss.forward(logits, tensor(new long[] { -100, -100, -100 })).item<float>());
        }
        using var head = new ChunkedLinearCrossEntropy(options);
        Assert.Contains("class weight 0", Assert.Throws<ArgumentException>(() => head.forward(randn(3, 4), randn(3, 4), target)).Message);
    }

    /// <summary>C random weights in [0, 2) with every third one 0.</summary>
    internal static double[] RandomWeights(long classes, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, (int)classes).Select(c => c % 3 == 2 ? 0.0 : 2 * random.NextDouble()).ToArray();
    }

    private static Tensor Weights(CrossEntropyOptions options, ScalarType dtype) => tensor(options.ClassWeights!.ToArray(), dtype);
}
