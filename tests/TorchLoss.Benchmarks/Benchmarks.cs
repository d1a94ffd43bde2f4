using BenchmarkDotNet.Attributes;

namespace TorchLoss.Benchmarks;

/// <summary>Forward + backward of built-in cross_entropy vs TorchLoss on the workload a derived class sets up.</summary>
public abstract class CrossEntropyBenchmarks
{
    /// <summary>The logits and targets, allocated by the derived class's global setup.</summary>
    protected CrossEntropyWorkload Workload { get; set; } = null!;

    /// <summary>Frees the logits.</summary>
    [GlobalCleanup]
    public void Cleanup() => Workload.Dispose();

    /// <summary>libtorch's cross_entropy.</summary>
    [Benchmark(Baseline = true)]
    public void BuiltIn() => Workload.BuiltIn();

    /// <summary>TorchLoss, automatic backend.</summary>
    [Benchmark]
    public void TorchLoss() => Workload.TorchLoss();
}

/// <summary>Forward + backward of built-in cross_entropy vs TorchLoss over a grid of vocabulary sizes, N = 4096.</summary>
public class VocabularyGridBenchmarks : CrossEntropyBenchmarks
{
    /// <summary>Vocabulary size V.</summary>
    [Params(65, 1024, 8192, 32000, 50257)]
    public int Classes { get; set; }

    /// <summary>Label smoothing ε.</summary>
    [Params(0.0, 0.1)]
    public double Epsilon { get; set; }

    /// <summary>Allocates the logits.</summary>
    [GlobalSetup]
    public void Setup() => Workload = new CrossEntropyWorkload(4096, Classes, Epsilon);
}

/// <summary>The two cross-entropy target cases, plus one copy of the logits (the hardware floor).</summary>
public class TargetCaseBenchmarks : CrossEntropyBenchmarks
{
    /// <summary>"rows x classes".</summary>
    [Params("4096x32000", "49152x65")]
    public string Shape { get; set; } = "4096x32000";

    /// <summary>Allocates the logits (ε = 0.1, 10% ignored).</summary>
    [GlobalSetup]
    public void Setup()
    {
        var parts = Shape.Split('x').Select(long.Parse).ToArray();
        Workload = new CrossEntropyWorkload(parts[0], parts[1], 0.1);
    }

    /// <summary>One copy of the logits: one read and one write.</summary>
    [Benchmark]
    public void CopyLogits() => Workload.CopyLogits();

    /// <summary>One copy of the logits into a new tensor (first touch of fresh pages included).</summary>
    [Benchmark]
    public void CloneLogits() => Workload.CloneLogits();
}

/// <summary>Output head + loss at N = 4096, d = 512, V = 50257, ε = 0.1: plain vs chunked.</summary>
public class LinearCrossEntropyBenchmarks
{
    private LinearCrossEntropyWorkload _workload = null!;

    /// <summary>Allocates hidden states and weight.</summary>
    [GlobalSetup]
    public void Setup() => _workload = new LinearCrossEntropyWorkload(4096, 512, 50257, 0.1);

    /// <summary>Frees them.</summary>
    [GlobalCleanup]
    public void Cleanup() => _workload.Dispose();

    /// <summary>matmul + libtorch's cross_entropy.</summary>
    [Benchmark(Baseline = true)]
    public void Plain() => _workload.Plain();

    /// <summary><see cref="ChunkedLinearCrossEntropy"/>.</summary>
    [Benchmark]
    public void Chunked() => _workload.Chunked();
}
