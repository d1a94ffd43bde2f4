using TorchSharp;
using static TorchLoss.Tests.TestTensors;
using static TorchSharp.torch;

namespace TorchLoss.Tests.Information;

/// <summary>CE(p, q) = H(p) + KL(p‖q), and what it means for smoothed targets.</summary>
public class InformationTheoryTests
{
    /// <summary>Logits (log-probabilities) of a smoothed one-hot target over <paramref name="classes"/> classes.</summary>
    private static Tensor SmoothedTargetLogits(Tensor target, long classes, double epsilon, SmoothingKind kind)
    {
        var oneHot = nn.functional.one_hot(target, classes).to(ScalarType.Float64);
        var distribution = kind == SmoothingKind.Uniform
            ? (1 - epsilon) * oneHot + epsilon / classes
            : (1 - epsilon) * oneHot + epsilon / (classes - 1) * (1 - oneHot);
        return distribution.log();
    }

    [Fact]
    public void CrossEntropyIsEntropyPlusKlDivergence()
    {
        using var scope = NewDisposeScope();
        var p = Logits([3, 4, 9], ScalarType.Float64, seed: 51);
        var q = Logits([3, 4, 9], ScalarType.Float64, seed: 52);

        var ce = InformationTheory.CrossEntropy(p, q);

        Assert.Equal([3L, 4L], ce.shape);
        AssertClose(InformationTheory.Entropy(p) + InformationTheory.KlDivergence(p, q), ce, 1e-12);
        Assert.All(Values(InformationTheory.KlDivergence(p, q)), kl => Assert.True(kl > 0));
        Assert.All(Values(InformationTheory.KlDivergence(p, p)), kl => Assert.Equal(0.0, kl, 12));
    }

    [Fact]
    public void OneHotTargetsHaveZeroEntropyAndCrossEntropyIsTheNll()
    {
        using var scope = NewDisposeScope();
        var target = tensor(new long[] { 2, 0, 4 });
        var p = SmoothedTargetLogits(target, 5, 0, SmoothingKind.Uniform); // log of one-hot: 0 and −∞
        var q = Logits([3, 5], ScalarType.Float64, seed: 53);
        using var loss = new TokenCrossEntropy(new CrossEntropyOptions { Reduction = nn.Reduction.None });

        Assert.All(Values(InformationTheory.Entropy(p)), h => Assert.Equal(0.0, h));
        AssertClose(loss.forward(q, target), InformationTheory.CrossEntropy(p, q), 1e-12);
        AssertClose(InformationTheory.CrossEntropy(p, q), InformationTheory.KlDivergence(p, q), 1e-12);
    }

    [Theory]
    [InlineData(0.1, SmoothingKind.Uniform)]
    [InlineData(0.1, SmoothingKind.OtherClasses)]
    [InlineData(0.9, SmoothingKind.OtherClasses)]
    public void ASmoothedLossIsTheCrossEntropyToTheSmoothedTargetAndItsFloorIsTheTargetsEntropy(double epsilon, SmoothingKind kind)
    {
        using var scope = NewDisposeScope();
        const long classes = 7;
        var target = tensor(new long[] { 0, 3, 6, 2 });
        var q = Logits([4, classes], ScalarType.Float64, seed: 54);
        var p = SmoothedTargetLogits(target, classes, epsilon, kind);
        using var loss = new TokenCrossEntropy(new CrossEntropyOptions { LabelSmoothing = epsilon, Smoothing = kind, Reduction = nn.Reduction.None });

        var smoothedLoss = loss.forward(q, target);

        AssertClose(InformationTheory.CrossEntropy(p, q), smoothedLoss, 1e-12, "loss vs CE to the smoothed target");
        AssertClose(InformationTheory.Entropy(p) + InformationTheory.KlDivergence(p, q), smoothedLoss, 1e-12, "H + KL");
        Assert.All(Values(smoothedLoss - InformationTheory.Entropy(p)), gap => Assert.True(gap > 0));
        // A model that predicts the smoothed target exactly (up to a shift of its logits) reaches the floor H(p).
        AssertClose(InformationTheory.Entropy(p), loss.forward(p + 3.5, target), 1e-12, "loss at the optimum");
    }

    [Fact]
    public void MismatchedShapesAreRejected()
    {
        using var scope = NewDisposeScope();
        var error = Assert.Throws<ArgumentException>(() => InformationTheory.KlDivergence(zeros(2, 3), zeros(2, 4)));
        Assert.Contains("[2, 3]", error.Message);
        Assert.Contains("[2, 4]", error.Message);
        Assert.Throws<ArgumentException>(() => InformationTheory.Entropy(zeros(new long[] { 3 }, ScalarType.Int64)));
    }

    [Fact]
    public void Negative_infinite_logits_give_finite_gradients_in_every_helper()
    {
        using var scope = NewDisposeScope();
        // One-hot and top-k filtered distributions: −∞ logits mean probability 0, and 0·log 0 = 0 in the value and the gradient.
        var p = tensor(new[,] { { 0.0, double.NegativeInfinity, double.NegativeInfinity }, { 1.0, 0.5, double.NegativeInfinity } })
            .requires_grad_(true);
        var q = tensor(new[,] { { 0.2, -0.3, 1.0 }, { -1.0, 0.4, double.NegativeInfinity } }).requires_grad_(true);
        var helpers = new (string Name, Func<Tensor> Value)[]
        {
            ("Entropy", () => InformationTheory.Entropy(p)),
            ("KlDivergence", () => InformationTheory.KlDivergence(p, q)),
            ("CrossEntropy", () => InformationTheory.CrossEntropy(p, q)),
        };
        foreach (var (name, value) in helpers)
        {
            p.grad?.zero_();
            q.grad?.zero_();
            var result = value();
            Assert.All(Values(result), v => Assert.True(double.IsFinite(v), $"{name} value {v}"));
            result.sum().backward();
            Assert.All(Values(p.grad!), g => Assert.True(double.IsFinite(g), $"{name} gradient in p: {g}"));
            if (q.grad is not null)
                Assert.All(Values(q.grad), g => Assert.True(double.IsFinite(g), $"{name} gradient in q: {g}"));
        }
        Assert.Equal(0.0, Values(InformationTheory.Entropy(p))[0]);
    }
}
