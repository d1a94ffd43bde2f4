using static TorchSharp.torch;

namespace TorchLoss.Tests.Kernels;

/// <summary>10,000 loss calls with backward on each path leave the live tensor count unchanged.</summary>
public class FastPathLeakTests
{
    private const int Calls = 10_000;

    [Theory]
    [InlineData(CrossEntropyBackend.Fused)]
    [InlineData(CrossEntropyBackend.LibTorch)]
    public void TokenCrossEntropyCallsDoNotLeak(CrossEntropyBackend backend)
    {
        using var loss = new TokenCrossEntropy(new CrossEntropyOptions { LabelSmoothing = 0.1, ZLossWeight = 1e-4, Backend = backend });
        LeakCheck.AssertNoGrowth(() =>
        {
            using var scope = NewDisposeScope();
            var logits = randn(6, 40, requires_grad: true);
            var target = randint(0, 40, [6]);
            using var result = loss.Compute(logits, target, target.ne(3));
            result.Loss.backward();
        }, Calls);
    }

    [Fact]
    public void FusedPerTokenLossDoesNotLeak()
    {
        using var loss = new TokenCrossEntropy(new CrossEntropyOptions { Causal = true, Reduction = nn.Reduction.None, Backend = CrossEntropyBackend.Fused });
        LeakCheck.AssertNoGrowth(() =>
        {
            using var scope = NewDisposeScope();
            var logits = randn(2, 5, 30, requires_grad: true);
            var labels = randint(0, 30, [2, 5]);
            loss.forward(logits, labels).sum().backward();
        }, Calls);
    }

    [Theory]
    [InlineData(nn.Reduction.Mean)]
    [InlineData(nn.Reduction.None)]
    public void ChunkedHeadCallsDoNotLeak(nn.Reduction reduction)
    {
        using var head = new ChunkedLinearCrossEntropy(new CrossEntropyOptions { LabelSmoothing = 0.1, Reduction = reduction }, chunkSize: 4);
        LeakCheck.AssertNoGrowth(() =>
        {
            using var scope = NewDisposeScope();
            var hidden = randn(6, 8, requires_grad: true);
            var weight = randn(20, 8, requires_grad: true);
            var bias = randn(20, requires_grad: true);
            var target = randint(0, 20, [6]);
            using var result = head.Compute(hidden, weight, target, bias: bias);
            result.Loss.sum().backward();
        }, Calls);
    }
}
