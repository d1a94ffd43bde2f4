using System.Globalization;
using static TorchSharp.torch;

namespace TorchLoss.Tests.Kernels;

/// <summary>
/// 10,000 forward + backward calls on each fast path with no dispose scope at all, every temporary left to the
/// garbage collector as in the Quick start: once the finalizers have run, the number of live tensors and the
/// resident memory are where they were. (The scoped tests in <see cref="FastPathLeakTests"/> cannot see a tensor that
/// escapes from backward into the caller's scope; these can see anything that stays reachable.)
/// </summary>
[Collection(ProcessWideStateCollection.Name)]
public class UnscopedLeakTests
{
    private const int Calls = 10_000;
    private const int WarmUpCalls = 300;

    /// <summary>Tensors that may be alive at one measurement and not the other (thread-local caches and the like).</summary>
    private const long TensorSlack = 20;

    /// <summary>
    /// Resident memory that may come and go (allocator caches, JIT, GC heap). A leak of one [16, 256] float32
    /// tensor per call would add 160 MiB.
    /// </summary>
    private const long RssSlackKiB = 48 * 1024;

    [Theory]
    [InlineData(nn.Reduction.Mean)]
    [InlineData(nn.Reduction.None)]
    public void FusedCrossEntropy(nn.Reduction reduction)
    {
        var loss = new TokenCrossEntropy(new CrossEntropyOptions { LabelSmoothing = 0.1, ZLossWeight = 1e-4, Reduction = reduction, Backend = CrossEntropyBackend.Fused });
        AssertFlat(() =>
        {
            var logits = randn(16, 256, requires_grad: true);
            var target = randint(0, 256, [16]);
            var result = loss.Compute(logits, target, target.ne(3));
            result.Loss.sum().backward();
        });
    }

    [Theory]
    [InlineData(nn.Reduction.Mean)]
    [InlineData(nn.Reduction.None)]
    public void ChunkedHead(nn.Reduction reduction)
    {
        var head = new ChunkedLinearCrossEntropy(new CrossEntropyOptions { LabelSmoothing = 0.1, Reduction = reduction }, chunkSize: 8);
        AssertFlat(() =>
        {
            var hidden = randn(16, 32, requires_grad: true);
            var weight = randn(256, 32, requires_grad: true);
            var bias = randn(256, requires_grad: true);
            var target = randint(0, 256, [16]);
            var result = head.Compute(hidden, weight, target, bias: bias);
            result.Loss.sum().backward();
        });
    }

    private static void AssertFlat(Action step)
    {
        for (int i = 0; i < WarmUpCalls; i++) step();
        Settle();
        long tensorsBefore = Tensor.TotalCount;
        long rssBefore = ResidentKiB();
        for (int i = 1; i <= Calls; i++)
        {
            step();
            // Native memory is invisible to the GC, so nothing would make it collect during a loop of small
            // managed objects; a training loop without scopes has the same problem, which is why the README asks for one.
            if (i % 500 == 0) Settle();
        }
        Settle();
        long tensorsAfter = Tensor.TotalCount;
        long rssAfter = ResidentKiB();
        Assert.True(tensorsAfter - tensorsBefore <= TensorSlack,
            $"live tensors grew from {tensorsBefore} to {tensorsAfter} over {Calls} unscoped calls");
        Assert.True(rssAfter - rssBefore <= RssSlackKiB,
            $"resident memory grew from {rssBefore / 1024} MiB to {rssAfter / 1024} MiB over {Calls} unscoped calls");
    }

    private static void Settle()
    {
        // Finalizing a loss frees its autograd graph, which frees what the graph held: collect until that settles.
        for (int i = 0; i < 3; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
    }

    private static long ResidentKiB()
    {
        var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
    }
}
