using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss.Tests;

/// <summary>The lesson's worked example: "Sky is ___" with logits [2.0, 4.5, 1.0] and target "blue".</summary>
public class GoldenValueTests
{
    private static double Loss(CrossEntropyOptions options)
    {
        using var scope = NewDisposeScope();
        var logits = tensor(new float[] { 2.0f, 4.5f, 1.0f }).unsqueeze(0);
        var target = tensor(new long[] { 1 });
        using var module = new TokenCrossEntropy(options);
        return module.forward(logits, target).item<float>();
    }

    [Fact]
    public void UnsmoothedLossAndPerplexity()
    {
        double loss = Loss(new CrossEntropyOptions());
        Assert.Equal(0.1064, loss, 4);
        Assert.Equal(1.112, Math.Exp(loss), 3);
    }

    [Fact]
    public void UniformSmoothing() => Assert.Equal(0.3064, Loss(new CrossEntropyOptions { LabelSmoothing = 0.1 }), 4);

    [Fact]
    public void OtherClassesSmoothing() =>
        Assert.Equal(0.4064, Loss(new CrossEntropyOptions { LabelSmoothing = 0.1, Smoothing = SmoothingKind.OtherClasses }), 4);
}
