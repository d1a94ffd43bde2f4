using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss.Tests;

/// <summary>Repeated calls of every public entry point, on every computation path, leave no live tensors.</summary>
public class NoLeakTests
{
    public static TheoryData<CrossEntropyOptions> Paths() => new()
    {
        new CrossEntropyOptions(),
        new CrossEntropyOptions { LabelSmoothing = 0.1, Reduction = nn.Reduction.Sum },
        new CrossEntropyOptions { LabelSmoothing = 0.2, Smoothing = SmoothingKind.OtherClasses, ZLossWeight = 1e-3 },
        new CrossEntropyOptions { LabelSmoothing = 0.9, Smoothing = SmoothingKind.OtherClasses, Reduction = nn.Reduction.None },
        new CrossEntropyOptions { LabelSmoothing = 0.1, ClassWeights = [1, 0, 2, 1, 1, 3, 1], Backend = CrossEntropyBackend.LibTorch },
        new CrossEntropyOptions { LabelSmoothing = 0.1, ClassWeights = [1, 0, 2, 1, 1, 3, 1], Backend = CrossEntropyBackend.Fused },
    };

    [Theory]
    [MemberData(nameof(Paths))]
    public void TokenCrossEntropyWithSoftTargets(CrossEntropyOptions options)
    {
        using var loss = new TokenCrossEntropy(options with { Backend = CrossEntropyBackend.Auto });
        using var mask = ones(2, 5, ScalarType.Bool);
        LeakCheck.AssertNoGrowth(() =>
        {
            using var scope = NewDisposeScope();
            var logits = randn(2, 5, 7, requires_grad: true);
            var target = nn.functional.softmax(randn(2, 5, 7), -1);
            using (var result = loss.Compute(logits, target, mask)) result.Loss.sum().backward();
            loss.forward(logits, target).sum().backward();
        }, 30);
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void TokenCrossEntropy(CrossEntropyOptions options)
    {
        using var loss = new TokenCrossEntropy(options);
        using var mask = ones(2, 5, ScalarType.Bool);
        LeakCheck.AssertNoGrowth(() =>
        {
            using var scope = NewDisposeScope();
            var logits = randn(2, 5, 7, requires_grad: true);
            var target = randint(0, 7, [2, 5]);
            using (var result = loss.Compute(logits, target, mask)) result.Loss.sum().backward();
            loss.forward(logits, target).sum().backward();
        }, 30);
    }

    [Fact]
    public void ForwardWithoutAnyScopeDisposesWhatItReturnsNothingElse()
    {
        using var loss = new TokenCrossEntropy();
        using var logits = randn(3, 4);
        using var target = tensor(new long[] { 0, 1, 2 });
        LeakCheck.AssertNoGrowth(() =>
        {
            using var value = loss.forward(logits, target);
        }, 30);
    }

    [Fact]
    public void CausalCrossEntropyWithNormalizerAndCountTokens()
    {
        using var loss = new TokenCrossEntropy(new CrossEntropyOptions { Causal = true, LabelSmoothing = 0.1 });
        LeakCheck.AssertNoGrowth(() =>
        {
            using var scope = NewDisposeScope();
            var logits = randn(2, 6, 5, requires_grad: true);
            var labels = randint(0, 5, [2, 6]);
            var mask = rand(2, 6).gt(0.3);
            long normalizer = new CrossEntropyOptions { Causal = true }.CountTokens(labels, mask) + 1;
            using var result = loss.Compute(logits, labels, mask, normalizer);
            result.Loss.backward();
        }, 30);
    }

    [Fact]
    public void HalfPrecision()
    {
        using var loss = new TokenCrossEntropy(new CrossEntropyOptions { ZLossWeight = 1e-4 });
        LeakCheck.AssertNoGrowth(() =>
        {
            using var scope = NewDisposeScope();
            var logits = randn(4, 6).to(ScalarType.BFloat16).requires_grad_(true);
            loss.forward(logits, randint(0, 6, [4])).backward();
        }, 30);
    }

    [Fact]
    public void InformationTheory()
    {
        using var p = randn(3, 5);
        using var q = randn(3, 5);
        LeakCheck.AssertNoGrowth(() =>
        {
            using var h = TorchLoss.InformationTheory.Entropy(p);
            using var kl = TorchLoss.InformationTheory.KlDivergence(p, q);
            using var ce = TorchLoss.InformationTheory.CrossEntropy(p, q);
        }, 30);
    }

    [Fact]
    public void RejectedInputs()
    {
        using var loss = new TokenCrossEntropy();
        using var causal = new TokenCrossEntropy(new CrossEntropyOptions { Causal = true });
        using var logits = randn(2, 3, 4);
        using var outOfRange = tensor(new long[,] { { 0, 1, 9 }, { 0, 1, 2 } });
        using var inRange = tensor(new long[,] { { 0, 1, 3 }, { 0, 1, 2 } });
        using var badMask = ones(2, 2, ScalarType.Bool);
        LeakCheck.AssertNoGrowth(() =>
        {
            Assert.Throws<ArgumentException>(() => loss.forward(logits, outOfRange));
            Assert.Throws<ArgumentException>(() => causal.forward(logits, outOfRange));
            Assert.Throws<ArgumentException>(() => causal.Compute(logits, inRange, badMask));
        }, 30);
    }
}
