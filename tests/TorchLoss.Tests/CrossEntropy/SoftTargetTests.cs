using TorchSharp;
using static TorchLoss.Tests.TestTensors;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TorchLoss.Tests.CrossEntropy;

/// <summary>Soft (probability) targets against torch's probability-target <c>functional.cross_entropy</c>.</summary>
public class SoftTargetTests
{
    public static TheoryData<ScalarType, nn.Reduction, double, bool> Cases()
    {
        var data = new TheoryData<ScalarType, nn.Reduction, double, bool>();
        foreach (var dtype in new[] { ScalarType.Float32, ScalarType.Float64 })
            foreach (var reduction in new[] { nn.Reduction.None, nn.Reduction.Sum, nn.Reduction.Mean })
                foreach (double smoothing in new[] { 0.0, 0.1, 0.7 })
                    foreach (bool weighted in new[] { false, true })
                        data.Add(dtype, reduction, smoothing, weighted);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesTorchsProbabilityTargets(ScalarType dtype, nn.Reduction reduction, double smoothing, bool weighted)
    {
        using var scope = NewDisposeScope();
        const long classes = 7;
        var logits = Logits([3, 4, classes], dtype, seed: 1);
        var q = Distributions([3, 4, classes], dtype, seed: 2);
        double[]? weights = weighted ? ClassWeightTests.RandomWeights(classes, seed: 3) : null;
        using var module = new TokenCrossEntropy(new CrossEntropyOptions { LabelSmoothing = smoothing, Reduction = reduction, ClassWeights = weights });

        var ours = module.forward(logits, q);
        var torchLogits = logits.detach().clone().requires_grad_(true);
        var theirs = F.cross_entropy(ClassesInDim1(torchLogits), ClassesInDim1(q), weights is null ? null : tensor(weights, dtype),
            reduction: reduction, label_smoothing: smoothing);

        AssertSameLossAndGradient(theirs, torchLogits, ours, logits);
    }

    [Theory]
    [InlineData(nn.Reduction.Mean)]
    [InlineData(nn.Reduction.Sum)]
    public void TheMaskSelectsPositionsAndTheMeanDividesByTheirNumber(nn.Reduction reduction)
    {
        using var scope = NewDisposeScope();
        var logits = Logits([5, 6, 4], ScalarType.Float64, seed: 11);
        var q = Distributions([5, 6, 4], ScalarType.Float64, seed: 12);
        var mask = rand([5, 6], generator: new Generator(13)).gt(0.4);
        // What sits at masked-out positions does not matter, not even NaN.
        var garbage = q.masked_fill(mask.logical_not().unsqueeze(-1), double.NaN);
        var options = new CrossEntropyOptions { LabelSmoothing = 0.1, Reduction = reduction, ClassWeights = [0.5, 1, 2, 0] };
        using var module = new TokenCrossEntropy(options);

        using var result = module.Compute(logits, garbage, mask);
        result.Loss.backward();
        var torchLogits = logits.detach().clone().requires_grad_(true);
        var theirs = F.cross_entropy(torchLogits[mask], q[mask], tensor(new[] { 0.5, 1, 2, 0 }), reduction: reduction, label_smoothing: 0.1);
        theirs.backward();

        AssertClose(theirs, result.Loss, 1e-12, "loss");
        AssertClose(torchLogits.grad!, logits.grad!, 1e-12, "gradient");
        Assert.Equal(mask.sum().item<long>(), result.TokenCount.item<long>());
        // NllSum is the unsmoothed, unweighted cross-entropy H(q, p) over the counted positions.
        var expectedNll = -(q[mask] * F.log_softmax(logits.detach()[mask], -1)).sum();
        AssertClose(expectedNll, result.NllSum, 1e-12, "NllSum");
    }

    [Fact]
    public void OneHotSoftTargetsEqualClassIndices()
    {
        using var scope = NewDisposeScope();
        var logits = Logits([4, 5, 9], ScalarType.Float64, seed: 21);
        var target = Targets([4, 5], 9, seed: 22);
        var oneHot = F.one_hot(target, 9).to(ScalarType.Float64);
        foreach (var kind in new[] { SmoothingKind.Uniform, SmoothingKind.OtherClasses })
        {
            var options = new CrossEntropyOptions { LabelSmoothing = 0.3, Smoothing = kind, ZLossWeight = 1e-3, ClassWeights = ClassWeightTests.RandomWeights(9, seed: 23), Reduction = nn.Reduction.Sum };
            using var module = new TokenCrossEntropy(options);
            using var hard = module.Compute(logits, target);
            using var soft = module.Compute(logits, oneHot);
            AssertClose(hard.Loss, soft.Loss, 1e-12, $"loss ({kind})");
            AssertClose(hard.NllSum, soft.NllSum, 1e-12, $"NllSum ({kind})");
            AssertClose(hard.ZLossSum, soft.ZLossSum, 1e-12, $"ZLossSum ({kind})");
        }
    }

    [Fact]
    public void CausalSoftLabelsAreShiftedLikeClassIndices()
    {
        using var scope = NewDisposeScope();
        var logits = Logits([2, 6, 5], ScalarType.Float64, seed: 31);
        var labels = Distributions([2, 6, 5], ScalarType.Float64, seed: 32);
        var mask = rand([2, 6], generator: new Generator(33)).gt(0.3);
        var options = new CrossEntropyOptions { LabelSmoothing = 0.1 };
        using var causal = new TokenCrossEntropy(options with { Causal = true });
        using var plain = new TokenCrossEntropy(options);

        using var ours = causal.Compute(logits, labels, mask);
        using var reference = plain.Compute(logits[.., ..^1, ..], labels[.., 1..], mask[.., 1..]);
        AssertClose(reference.Loss, ours.Loss, 1e-12, "loss");
        AssertClose(reference.NllSum, ours.NllSum, 1e-12, "NllSum");
        Assert.Equal(reference.TokenCount.item<long>(), ours.TokenCount.item<long>());
    }

    [Theory]
    [InlineData(-0.1, "smallest is -0.1")]
    [InlineData(0.2, "sum to 1.2")]
    [InlineData(double.NaN, "NaN")]
    public void RowsThatAreNotDistributionsAreRejected(double value, string mention)
    {
        using var scope = NewDisposeScope();
        using var module = new TokenCrossEntropy();
        var q = Distributions([2, 3, 4], ScalarType.Float32, seed: 41);
        q[1, 2] = tensor(new float[] { 0.5f, 0.3f, (float)value, 0.2f - (value < 0 ? (float)value : 0) });
        var error = Assert.Throws<ArgumentException>(() => module.forward(randn(2, 3, 4), q));
        Assert.Contains("[1, 2]", error.Message);
        Assert.Contains("not a distribution", error.Message);
        Assert.Contains(mention, error.Message);
        // Masked out, the row is not looked at; CheckSoftTargets = false skips the check.
        var mask = ones([2, 3], ScalarType.Bool);
        mask[1, 2] = tensor(false);
        Assert.True(double.IsFinite(module.Compute(randn(2, 3, 4), q, mask).Loss.item<float>()));
        using var unchecked_ = new TokenCrossEntropy(new CrossEntropyOptions { CheckSoftTargets = false });
        unchecked_.forward(randn(2, 3, 4), q);
    }

    [Fact]
    public void SoftTargetsOfAnotherShapeOrOnTheForcedFusedBackendAreRejected()
    {
        using var scope = NewDisposeScope();
        using var module = new TokenCrossEntropy();
        var error = Assert.Throws<ArgumentException>(() => module.forward(randn(2, 3, 4), Distributions([2, 3, 5], ScalarType.Float32, seed: 51)));
        Assert.Contains("class probabilities", error.Message);
        Assert.Contains("[2, 3, 4]", error.Message);
        using var fused = new TokenCrossEntropy(new CrossEntropyOptions { Backend = CrossEntropyBackend.Fused });
        Assert.Contains("soft", Assert.Throws<ArgumentException>(() => fused.forward(randn(2, 4), Distributions([2, 4], ScalarType.Float32, seed: 52))).Message);
        using var head = new ChunkedLinearCrossEntropy();
        Assert.Contains("integer", Assert.Throws<ArgumentException>(() => head.forward(randn(2, 4), randn(4, 4), Distributions([2, 4], ScalarType.Float32, seed: 53))).Message);
    }

    /// <summary>Seeded random distributions over the last dimension, some of them peaked, one with exact zeros.</summary>
    private static Tensor Distributions(long[] shape, ScalarType dtype, long seed)
    {
        using var scope = NewDisposeScope();
        var gen = new Generator((ulong)seed);
        var q = F.softmax(randn(shape, ScalarType.Float64, generator: gen) * 2, -1);
        q.view(-1, shape[^1])[0] = zeros(shape[^1], ScalarType.Float64).index_fill_(0, tensor(new long[] { 0 }), 1.0);
        return q.to(dtype).MoveToOuterDisposeScope();
    }

    /// <summary>torch's layout [N, C, d1, ...] from TorchLoss's [N, d1, ..., C].</summary>
    private static Tensor ClassesInDim1(Tensor t) => t.dim() > 2 ? t.movedim(new long[] { -1 }, new long[] { 1 }) : t;
}
