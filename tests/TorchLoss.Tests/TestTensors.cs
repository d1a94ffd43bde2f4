using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss.Tests;

/// <summary>Comparisons and numerical gradients shared by the loss tests.</summary>
internal static class TestTensors
{
    public static double[] Values(Tensor t)
    {
        using var scope = NewDisposeScope();
        return t.detach().to(ScalarType.Float64).cpu().contiguous().data<double>().ToArray();
    }

    public static double Scalar(Tensor t) => Values(t).Single();

    /// <summary>Asserts equal shapes and |expected − actual| ≤ tolerance·(1 + |expected|) element-wise.</summary>
    public static void AssertClose(Tensor expected, Tensor actual, double tolerance, string what = "values")
    {
        Assert.Equal(expected.shape, actual.shape);
        double[] e = Values(expected), a = Values(actual);
        for (int i = 0; i < e.Length; i++)
        {
            double allowed = tolerance * (1 + Math.Abs(e[i]));
            Assert.True(Math.Abs(e[i] - a[i]) <= allowed || (double.IsNaN(e[i]) && double.IsNaN(a[i])),
                $"{what}[{i}]: expected {e[i]:R}, got {a[i]:R} (tolerance {allowed:G3})");
        }
    }

    /// <summary>
    /// Asserts that our loss and torch's agree (1e-12 in float64, 2e-5 otherwise), and so do the gradients of
    /// Σ loss·u for a seeded random u, ours in <paramref name="logits"/>.grad and torch's in <paramref name="torchLogits"/>.grad.
    /// </summary>
    public static void AssertSameLossAndGradient(Tensor theirs, Tensor torchLogits, Tensor ours, Tensor logits, string what = "")
    {
        double tolerance = logits.dtype == ScalarType.Float64 ? 1e-12 : 2e-5;
        AssertClose(theirs, ours, tolerance, $"loss {what}");
        var upstream = rand(ours.shape, ScalarType.Float64, generator: new Generator(7)).to(ours.dtype);
        (ours * upstream).sum().backward();
        (theirs * upstream).sum().backward();
        AssertClose(torchLogits.grad!, logits.grad!, tolerance, $"gradient {what}");
    }

    /// <summary>Seeded logits [shape] of the given dtype, as a leaf that requires grad.</summary>
    public static Tensor Logits(long[] shape, ScalarType dtype, long seed, double scale = 3.0)
    {
        using var scope = NewDisposeScope();
        var generator = new Generator((ulong)seed);
        var t = (randn(shape, ScalarType.Float64, generator: generator) * scale).to(dtype);
        return t.detach().requires_grad_(true).MoveToOuterDisposeScope();
    }

    /// <summary>Seeded class indices in [0, classes) with roughly <paramref name="ignoreFraction"/> set to <paramref name="ignoreIndex"/>.</summary>
    public static Tensor Targets(long[] shape, long classes, long seed, double ignoreFraction = 0, long ignoreIndex = -100)
    {
        using var scope = NewDisposeScope();
        var generator = new Generator((ulong)seed);
        var t = randint(0, classes, shape, ScalarType.Int64, generator: generator);
        if (ignoreFraction > 0)
            t = t.masked_fill(rand(shape, generator: generator).lt(ignoreFraction), ignoreIndex);
        return t.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Asserts that the autograd gradient of the scalar <paramref name="f"/> at float64 <paramref name="x"/>
    /// matches central finite differences.
    /// </summary>
    public static void AssertGradientMatchesFiniteDifferences(Func<Tensor, Tensor> f, Tensor x, double step = 1e-6, double tolerance = 1e-6)
    {
        Assert.Equal(ScalarType.Float64, x.dtype);
        using var scope = NewDisposeScope();
        var leaf = x.detach().clone().requires_grad_(true);
        f(leaf).backward();
        double[] analytic = Values(leaf.grad!);

        double[] point = Values(x);
        var numeric = new double[point.Length];
        using (no_grad())
        {
            for (int i = 0; i < point.Length; i++)
            {
                numeric[i] = (Evaluate(f, point, i, step, x.shape) - Evaluate(f, point, i, -step, x.shape)) / (2 * step);
            }
        }
        for (int i = 0; i < point.Length; i++)
        {
            Assert.True(Math.Abs(analytic[i] - numeric[i]) <= tolerance * (1 + Math.Abs(numeric[i])),
                $"d/dx[{i}]: autograd {analytic[i]:R}, finite differences {numeric[i]:R}");
        }
        Assert.Contains(numeric, g => Math.Abs(g) > 1e-3); // the check compared something non-trivial
    }

    private static double Evaluate(Func<Tensor, Tensor> f, double[] point, int i, double delta, long[] shape)
    {
        using var scope = NewDisposeScope();
        var moved = (double[])point.Clone();
        moved[i] += delta;
        return Scalar(f(tensor(moved).reshape(shape)));
    }
}
