using TorchSharp;
using static TorchLoss.Tests.TestTensors;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TorchLoss.Tests.CrossEntropy;

/// <summary>
/// <see cref="TokenCrossEntropy"/> against TorchSharp's own <c>functional.cross_entropy</c> wherever the two
/// describe the same loss: values and gradients. Torch puts classes in dim 1, TorchLoss last.
/// </summary>
public class TorchParityTests
{
    public static TheoryData<ScalarType, nn.Reduction, double, double> Cases()
    {
        var data = new TheoryData<ScalarType, nn.Reduction, double, double>();
        foreach (var dtype in new[] { ScalarType.Float32, ScalarType.Float64 })
            foreach (var reduction in new[] { nn.Reduction.None, nn.Reduction.Sum, nn.Reduction.Mean })
                foreach (double smoothing in new[] { 0.0, 0.1, 0.7 })
                    foreach (double ignored in new[] { 0.0, 0.3 })
                        data.Add(dtype, reduction, smoothing, ignored);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesTorchOnBatchedSequences(ScalarType dtype, nn.Reduction reduction, double smoothing, double ignoredFraction)
    {
        using var scope = NewDisposeScope();
        long[] shape = [3, 5, 7];
        var logits = Logits(shape, dtype, seed: 1);
        var target = Targets([3, 5], 7, seed: 2, ignoredFraction);
        var options = new CrossEntropyOptions { LabelSmoothing = smoothing, Reduction = reduction };

        AssertParity(logits, target, options);
    }

    [Fact]
    public void MatchesTorchWithACustomIgnoreIndex()
    {
        using var scope = NewDisposeScope();
        var logits = Logits([4, 6], ScalarType.Float64, seed: 3);
        var target = tensor(new long[] { 0, 5, 0, 2 }); // 0 is the pad id here
        var options = new CrossEntropyOptions { IgnoreIndex = 0, LabelSmoothing = 0.2 };

        AssertParity(logits, target, options);
    }

    [Theory]
    [InlineData(0.1, 3)]
    [InlineData(0.3, 10)]
    [InlineData(0.5, 2)]
    public void OtherClassesMatchesTorchWithTheConvertedEpsilon(double epsilon, long classes)
    {
        using var scope = NewDisposeScope();
        var logits = Logits([4, 5, classes], ScalarType.Float64, seed: 4);
        var target = Targets([4, 5], classes, seed: 5, ignoreFraction: 0.2);
        using var module = new TokenCrossEntropy(new CrossEntropyOptions { LabelSmoothing = epsilon, Smoothing = SmoothingKind.OtherClasses });

        var ours = module.forward(logits, target);

        var theirs = F.cross_entropy(logits.detach().movedim(new long[] { -1 }, new long[] { 1 }), target, label_smoothing: epsilon * classes / (classes - 1));
        AssertClose(theirs, ours, 1e-12);
    }

    [Fact]
    public void MatchesTorchOnRandomShapes()
    {
        var random = new Random(20241129);
        var reductions = new[] { nn.Reduction.None, nn.Reduction.Sum, nn.Reduction.Mean };
        for (int trial = 0; trial < 40; trial++)
        {
            using var scope = NewDisposeScope();
            int rank = random.Next(0, 4); // dimensions before the class dimension
            long classes = random.Next(1, 12);
            long[] targetShape = Enumerable.Range(0, rank).Select(_ => (long)random.Next(1, 5)).ToArray();
            long[] shape = [.. targetShape, classes];
            var dtype = random.Next(2) == 0 ? ScalarType.Float32 : ScalarType.Float64;
            long ignoreIndex = random.Next(2) == 0 ? -100 : -1;
            var options = new CrossEntropyOptions
            {
                LabelSmoothing = random.Next(3) == 0 ? 0 : Math.Round(random.NextDouble() * 0.9, 2),
                Reduction = reductions[random.Next(3)],
                IgnoreIndex = ignoreIndex,
            };
            var logits = Logits(shape, dtype, seed: 100 + trial, scale: 1 + random.NextDouble() * 4);
            // Keep at least one counted token: torch's mean over no tokens is NaN, TorchLoss's is 0.
            var target = Targets(targetShape, classes, seed: 200 + trial, ignoreFraction: rank == 0 ? 0 : 0.25, ignoreIndex);
            target.view(-1)[0] = tensor(0L);

            AssertParity(logits, target, options, $"trial {trial}: logits {string.Join("x", shape)}, {dtype}, {options}");
        }
    }

    /// <summary>Loss values and the gradient of Σ loss·w for a random w, ours vs torch's.</summary>
    private static void AssertParity(Tensor logits, Tensor target, CrossEntropyOptions options, string what = "")
    {
        using var module = new TokenCrossEntropy(options);
        var ours = module.forward(logits, target);

        var torchLogits = logits.detach().clone().requires_grad_(true);
        // Torch wants [N, C, d1, ...]: move the class dimension from last to 1 (nothing to move for [C] or [N, C]).
        var classesInDim1 = logits.dim() > 2 ? torchLogits.movedim(new long[] { -1 }, new long[] { 1 }) : torchLogits;
        var theirs = F.cross_entropy(classesInDim1, target, ignore_index: options.IgnoreIndex, reduction: options.Reduction, label_smoothing: options.LabelSmoothing);

        AssertSameLossAndGradient(theirs, torchLogits, ours, logits, what);
    }
}
