using System.Collections.Concurrent;
using TorchLoss.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss.Tests.Kernels;

/// <summary>The kernels' parallel loop honours <c>torch.set_num_threads</c>, as TinyLM's <c>--threads 1</c> expects.</summary>
[Collection(ProcessWideStateCollection.Name)]
public class KernelParallelTests
{
    [Fact]
    public void OneTorchThreadRunsEveryTaskOnTheCallingThread()
    {
        WithTorchThreads(1, () =>
        {
            Assert.Equal(1, KernelParallel.MaxThreads);
            var threads = new ConcurrentDictionary<int, bool>();
            KernelParallel.For(64, _ =>
            {
                threads[Environment.CurrentManagedThreadId] = true;
                Thread.Sleep(1);
            });
            Assert.Equal([Environment.CurrentManagedThreadId], threads.Keys);
        });
    }

    [Fact]
    public void TasksNeverRunOnMoreThreadsThanTorchAllows()
    {
        WithTorchThreads(2, () =>
        {
            Assert.Equal(2, KernelParallel.MaxThreads);
            int running = 0, peak = 0, done = 0;
            KernelParallel.For(48, _ =>
            {
                int now = Interlocked.Increment(ref running);
                InterlockedMax(ref peak, now);
                Thread.Sleep(2);
                Interlocked.Decrement(ref running);
                Interlocked.Increment(ref done);
            });
            Assert.Equal(48, done);
            Assert.InRange(peak, 1, 2);
        });
    }

    [Fact]
    public void FusedLossIsTheSameOnOneThreadAndOnSeveral()
    {
        using var scope = NewDisposeScope();
        // 64 rows × 8192 classes is four parallel tasks of the kernel.
        var logits = TestTensors.Logits([64, 8192], ScalarType.Float32, seed: 91);
        var target = TestTensors.Targets([64], 8192, seed: 92, ignoreFraction: 0.1);
        using var loss = new TokenCrossEntropy(new CrossEntropyOptions { LabelSmoothing = 0.1, Backend = CrossEntropyBackend.Fused });

        (double Loss, Tensor Gradient) Run()
        {
            logits.grad = null;
            var value = loss.forward(logits, target);
            value.backward();
            return (value.item<float>(), logits.grad!.clone());
        }

        var (serialLoss, serialGradient) = WithTorchThreads(1, Run);
        var (parallelLoss, parallelGradient) = WithTorchThreads(2, Run);
        Assert.Equal(serialLoss, parallelLoss);
        Assert.True(serialGradient.equal(parallelGradient).all().item<bool>(), "the gradient must not depend on the thread count");
    }

    private static void WithTorchThreads(int threads, Action action) => WithTorchThreads(threads, () => { action(); return 0; });

    private static T WithTorchThreads<T>(int threads, Func<T> action)
    {
        int previous = get_num_threads();
        set_num_threads(threads);
        try
        {
            return action();
        }
        finally
        {
            set_num_threads(previous);
        }
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int current = Volatile.Read(ref target);
        while (value > current)
        {
            int seen = Interlocked.CompareExchange(ref target, value, current);
            if (seen == current) return;
            current = seen;
        }
    }
}
