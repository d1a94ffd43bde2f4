using static TorchSharp.torch;

namespace TorchLoss.Tests;

public class LeakCheckTests
{
    [Fact]
    public void DetectsALeak()
    {
        var kept = new List<Tensor>();
        Assert.ThrowsAny<Xunit.Sdk.XunitException>(() => LeakCheck.AssertNoGrowth(() => kept.Add(ones(2)), 5));
        foreach (var t in kept) t.Dispose();
    }

    [Fact]
    public void CausalLossStepsDoNotLeak()
    {
        using var loss = new TokenCrossEntropy(new CrossEntropyOptions { Causal = true, LabelSmoothing = 0.1, ZLossWeight = 1e-4 });
        LeakCheck.AssertNoGrowth(() =>
        {
            using var scope = NewDisposeScope();
            var logits = randn(2, 5, 7, requires_grad: true);
            var labels = randint(0, 7, [2, 5]);
            using var result = loss.Compute(logits, labels);
            result.Loss.backward();
        });
    }
}
