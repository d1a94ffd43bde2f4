using TorchSharp;
using static TorchLoss.Tests.TestTensors;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TorchLoss.Tests.CrossEntropy;

/// <summary>
/// What torch's kernel does not offer, checked against formulas written out by hand: "other classes"
/// smoothing as a soft-target cross-entropy, z-loss, masks, the totals of <see cref="LossResult"/>, empty
/// batches and half precision.
/// </summary>
public class ComposedLossTests
{
    /// <summary>Soft-target cross-entropy −Σ q log softmax(x) per token, q = 1−ε on the target and ε/(K−1) elsewhere.</summary>
    private static Tensor OtherClassesByHand(Tensor logits, Tensor target, double epsilon)
    {
        long classes = logits.shape[^1];
        var q = full_like(logits, epsilon / (classes - 1)).scatter(-1, target.unsqueeze(-1), full_like(logits, 1 - epsilon));
        return -(q * F.log_softmax(logits, -1)).sum(-1);
    }

    [Theory]
    [InlineData(0.1, 5)]   // fused: ε·K/(K−1) = 0.125
    [InlineData(0.5, 2)]   // fused at the edge: ε·K/(K−1) = 1
    [InlineData(0.7, 3)]   // composed: ε·K/(K−1) = 1.05 > 1, which torch rejects
    [InlineData(0.95, 11)] // composed
    public void OtherClassesEqualsTheHandBuiltSoftTarget(double epsilon, long classes)
    {
        using var scope = NewDisposeScope();
        var logits = Logits([4, 3, classes], ScalarType.Float64, seed: 11);
        var target = Targets([4, 3], classes, seed: 12);
        using var module = new TokenCrossEntropy(new CrossEntropyOptions
        {
            LabelSmoothing = epsilon, Smoothing = SmoothingKind.OtherClasses, Reduction = nn.Reduction.None,
        });

        var ours = module.forward(logits, target);

        var byHand = OtherClassesByHand(logits.detach(), target, epsilon);
        AssertClose(byHand, ours, 1e-12);
    }

    [Fact]
    public void OtherClassesMeanMatchesTheHandBuiltSoftTargetWithIgnoredTokensAndGradients()
    {
        using var scope = NewDisposeScope();
        var logits = Logits([6, 4], ScalarType.Float64, seed: 13);
        var target = tensor(new long[] { 0, -100, 3, 1, -100, 2 });
        var counted = target.ne(-100);
        using var module = new TokenCrossEntropy(new CrossEntropyOptions { LabelSmoothing = 0.8, Smoothing = SmoothingKind.OtherClasses });

        var ours = module.forward(logits, target);
        ours.backward();

        var reference = logits.detach().clone().requires_grad_(true);
        var perToken = OtherClassesByHand(reference, target.clamp_min(0), 0.8);
        var byHand = where(counted, perToken, zeros_like(perToken)).sum() / 4.0;
        byHand.backward();
        AssertClose(byHand, ours, 1e-12, "loss");
        AssertClose(reference.grad!, logits.grad!, 1e-12, "gradient");
    }

    [Theory]
    [InlineData(0.0, SmoothingKind.Uniform)]
    [InlineData(0.1, SmoothingKind.Uniform)]
    [InlineData(0.8, SmoothingKind.OtherClasses)]
    public void ZLossAddsWeightTimesLogSumExpSquared(double smoothing, SmoothingKind kind)
    {
        using var scope = NewDisposeScope();
        const double weight = 1e-2;
        var logits = Logits([5, 6], ScalarType.Float64, seed: 14, scale: 5);
        var target = tensor(new long[] { 1, -100, 5, 0, 2 });
        var counted = target.ne(-100);
        var plain = new CrossEntropyOptions { LabelSmoothing = smoothing, Smoothing = kind, Reduction = nn.Reduction.None };
        using var withoutZ = new TokenCrossEntropy(plain);
        using var withZ = new TokenCrossEntropy(plain with { ZLossWeight = weight });

        using var result = withZ.Compute(logits, target);

        var z = weight * logits.detach().logsumexp(-1).square();
        var expected = withoutZ.forward(logits.detach(), target) + where(counted, z, zeros_like(z));
        AssertClose(expected, result.Loss, 1e-12, "per-token loss");
        Assert.Equal(Scalar(where(counted, z, zeros_like(z)).sum()), Scalar(result.ZLossSum), 12);
    }

    [Fact]
    public void ResultTotalsAreTheUnsmoothedNllAndTheCountedTokens()
    {
        using var scope = NewDisposeScope();
        var logits = Logits([2, 4, 5], ScalarType.Float32, seed: 15);
        var target = tensor(new long[,] { { 1, 2, -100, 4 }, { 0, 0, 3, -100 } });
        var mask = tensor(new[,] { { true, false, true, true }, { true, true, true, true } });
        using var module = new TokenCrossEntropy(new CrossEntropyOptions { LabelSmoothing = 0.3, ZLossWeight = 1e-3 });

        using var result = module.Compute(logits, target, mask);

        var counted = target.ne(-100).logical_and(mask);
        var nll = F.cross_entropy(logits.detach().movedim(new long[] { -1 }, new long[] { 1 }), target, reduction: nn.Reduction.None);
        Assert.Equal(5L, result.TokenCount.item<long>());
        Assert.Equal(ScalarType.Float64, result.NllSum.dtype);
        Assert.False(result.NllSum.requires_grad);
        Assert.Equal(Scalar(where(counted, nll, zeros_like(nll)).sum()), Scalar(result.NllSum), 5);
    }

    [Fact]
    public void MaskAndIgnoreIndexGiveTheSameLoss()
    {
        using var scope = NewDisposeScope();
        var logits = Logits([3, 4, 6], ScalarType.Float64, seed: 16);
        var target = Targets([3, 4], 6, seed: 17);
        var mask = rand([3, 4], generator: new Generator(18)).gt(0.4);
        mask[0, 0] = tensor(true);
        using var module = new TokenCrossEntropy(new CrossEntropyOptions { LabelSmoothing = 0.6, Smoothing = SmoothingKind.OtherClasses, ZLossWeight = 1e-2 });

        using var masked = module.Compute(logits, target, mask);
        using var ignored = module.Compute(logits, target.masked_fill(mask.logical_not(), -100));

        AssertClose(ignored.Loss, masked.Loss, 1e-15);
        Assert.Equal(ignored.TokenCount.item<long>(), masked.TokenCount.item<long>());
    }

    [Theory]
    [InlineData(0.0, SmoothingKind.Uniform, 0.0)]
    [InlineData(0.1, SmoothingKind.Uniform, 1e-3)]
    [InlineData(0.9, SmoothingKind.OtherClasses, 1e-3)] // composed path
    public void MeanOverNoCountedTokensIsAZeroConnectedToTheGraph(double smoothing, SmoothingKind kind, double zLoss)
    {
        using var scope = NewDisposeScope();
        var logits = Logits([2, 3, 4], ScalarType.Float32, seed: 19);
        var target = tensor(new long[,] { { -100, 2, -100 }, { 1, -100, 0 } });
        var mask = tensor(new[,] { { true, false, true }, { false, true, false } }); // masks every non-ignored token
        using var module = new TokenCrossEntropy(new CrossEntropyOptions { LabelSmoothing = smoothing, Smoothing = kind, ZLossWeight = zLoss });

        using var result = module.Compute(logits, target, mask);
        result.Loss.backward();

        Assert.Equal(0f, result.Loss.item<float>());
        Assert.True(result.Loss.requires_grad);
        Assert.Equal(0L, result.TokenCount.item<long>());
        Assert.All(Values(logits.grad!), g => Assert.Equal(0.0, g));
    }

    [Theory]
    [InlineData(0.0, SmoothingKind.Uniform)]
    [InlineData(0.2, SmoothingKind.Uniform)]
    [InlineData(0.9, SmoothingKind.OtherClasses)]
    public void ReductionNoneIsZeroAtUncountedPositions(double smoothing, SmoothingKind kind)
    {
        using var scope = NewDisposeScope();
        var logits = Logits([2, 3, 4], ScalarType.Float32, seed: 20);
        var target = tensor(new long[,] { { -100, 2, 3 }, { 1, -100, 0 } });
        var mask = tensor(new[,] { { true, true, false }, { true, true, true } });
        using var module = new TokenCrossEntropy(new CrossEntropyOptions
        {
            LabelSmoothing = smoothing, Smoothing = kind, ZLossWeight = 1e-2, Reduction = nn.Reduction.None,
        });

        var perToken = module.Compute(logits, target, mask).Loss;

        Assert.Equal([2L, 3L], perToken.shape);
        double[] values = Values(perToken);
        Assert.Equal([0.0, 0.0, 0.0], new[] { values[0], values[2], values[4] });
        Assert.All(new[] { values[1], values[3], values[5] }, v => Assert.True(v > 0));
    }

    [Theory]
    [InlineData(ScalarType.Float16)]
    [InlineData(ScalarType.BFloat16)]
    public void HalfPrecisionIsComputedInFloat32(ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        // Large logits: log-sum-exp in half precision would overflow (exp(20) > 65504).
        var logits = (Logits([4, 8], ScalarType.Float32, seed: 21) * 8).to(dtype).detach().requires_grad_(true);
        var target = Targets([4], 8, seed: 22);
        using var module = new TokenCrossEntropy(new CrossEntropyOptions { LabelSmoothing = 0.1 });

        var loss = module.forward(logits, target);
        loss.backward();

        Assert.Equal(ScalarType.Float32, loss.dtype);
        Assert.Equal(dtype, logits.grad!.dtype);
        var reference = F.cross_entropy(logits.detach().to(ScalarType.Float32), target, label_smoothing: 0.1);
        AssertClose(reference, loss, 1e-6);
        Assert.True(double.IsFinite(Scalar(loss)));
    }
}
