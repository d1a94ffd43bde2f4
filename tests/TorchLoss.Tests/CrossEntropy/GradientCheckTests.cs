using TorchSharp;
using static TorchLoss.Tests.TestTensors;
using static TorchSharp.torch;

namespace TorchLoss.Tests.CrossEntropy;

/// <summary>Autograd gradients of the composed paths against central finite differences, in float64.</summary>
public class GradientCheckTests
{
    public static TheoryData<string, CrossEntropyOptions> Options() => new()
    {
        { "other classes, fused", new CrossEntropyOptions { LabelSmoothing = 0.2, Smoothing = SmoothingKind.OtherClasses } },
        { "other classes, composed (εK/(K−1) > 1)", new CrossEntropyOptions { LabelSmoothing = 0.9, Smoothing = SmoothingKind.OtherClasses } },
        { "z-loss", new CrossEntropyOptions { ZLossWeight = 0.05 } },
        { "z-loss + uniform smoothing", new CrossEntropyOptions { ZLossWeight = 0.05, LabelSmoothing = 0.1 } },
        { "z-loss + composed smoothing, sum", new CrossEntropyOptions { ZLossWeight = 0.05, LabelSmoothing = 0.9, Smoothing = SmoothingKind.OtherClasses, Reduction = nn.Reduction.Sum } },
    };

    [Theory]
    [MemberData(nameof(Options))]
    public void TokenCrossEntropyWithAMask(string name, CrossEntropyOptions options)
    {
        Assert.NotEmpty(name);
        using var scope = NewDisposeScope();
        using var module = new TokenCrossEntropy(options);
        var x = Logits([2, 3, 4], ScalarType.Float64, seed: 31).detach();
        var target = tensor(new long[,] { { 3, -100, 1 }, { 0, 2, 2 } });
        var mask = tensor(new[,] { { true, true, true }, { true, false, true } });

        AssertGradientMatchesFiniteDifferences(logits => module.Compute(logits, target, mask).Loss, x); // the result is disposed with the scope
    }

    [Theory]
    [MemberData(nameof(Options))]
    public void CausalCrossEntropyWithAMaskAndANormalizer(string name, CrossEntropyOptions options)
    {
        Assert.NotEmpty(name);
        using var scope = NewDisposeScope();
        using var module = new TokenCrossEntropy(options with { Causal = true });
        var x = Logits([2, 4, 3], ScalarType.Float64, seed: 32).detach();
        var labels = tensor(new long[,] { { 0, 2, 1, -100 }, { 1, 1, 0, 2 } });
        var mask = tensor(new[,] { { true, true, true, true }, { true, true, false, true } });

        AssertGradientMatchesFiniteDifferences(logits => module.Compute(logits, labels, mask, normalizer: 7).Loss, x); // the result is disposed with the scope
    }
}
