using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss.Tests.Kernels;

/// <summary>
/// The fused paths under autograd's less common uses: second derivatives (<c>create_graph</c>) and several
/// backward passes through a retained graph, each against the libtorch path.
/// </summary>
public class FusedGradientGraphTests
{
    private const long Rows = 12;
    private const long Classes = 37;

    public static TheoryData<nn.Reduction, double, SmoothingKind, double, bool, bool> Options() => new()
    {
        // reduction, ε, smoothing, z-loss, loss mask, class weights
        { nn.Reduction.Mean, 0, SmoothingKind.Uniform, 0, false, false },
        { nn.Reduction.Mean, 0.1, SmoothingKind.Uniform, 1e-3, true, false },
        { nn.Reduction.Sum, 0.6, SmoothingKind.OtherClasses, 0, false, false },
        { nn.Reduction.None, 0.2, SmoothingKind.Uniform, 1e-2, true, false },
        { nn.Reduction.Mean, 0.1, SmoothingKind.Uniform, 1e-3, true, true },
        { nn.Reduction.None, 0.6, SmoothingKind.OtherClasses, 0, false, true },
    };

    [Theory]
    [MemberData(nameof(Options))]
    public void FusedSecondDerivativesMatchLibTorch(nn.Reduction reduction, double epsilon, SmoothingKind kind, double zLoss, bool withMask, bool weighted)
    {
        using var scope = NewDisposeScope();
        double[]? weights = weighted ? Enumerable.Range(0, (int)Classes).Select(c => 0.25 + (c * 7 % 11) / 5.0).ToArray() : null;
        var options = new CrossEntropyOptions { Reduction = reduction, LabelSmoothing = epsilon, Smoothing = kind, ZLossWeight = zLoss, ClassWeights = weights };
        var logits = TestTensors.Logits([Rows, Classes], ScalarType.Float64, seed: 21);
        var target = TestTensors.Targets([Rows], Classes, seed: 22, ignoreFraction: 0.2);
        var mask = withMask ? rand([Rows], generator: new Generator(23)).gt(0.3) : null;
        // Per-token losses are weighted by a tensor that itself needs a gradient: it is part of the gradient's graph.
        var rowWeights = rand([Rows], ScalarType.Float64, generator: new Generator(24)).requires_grad_(true);
        var probe = randn([Rows, Classes], ScalarType.Float64, generator: new Generator(25));

        (Tensor Gradient, Tensor[] Second) Run(CrossEntropyBackend backend)
        {
            using var loss = new TokenCrossEntropy(options with { Backend = backend });
            var value = loss.Compute(logits, target, mask).Loss;
            var total = reduction == nn.Reduction.None ? (value * rowWeights).sum() : value * 1.5;
            var gradient = autograd.grad([total], [logits], retain_graph: true, create_graph: true)[0];
            Assert.True(gradient.requires_grad, $"{backend}: the gradient must carry a graph under create_graph");
            var inputs = reduction == nn.Reduction.None ? new[] { logits, rowWeights } : [logits];
            var second = autograd.grad([(gradient * probe).sum()], inputs);
            return (gradient.detach(), second.ToArray());
        }

        var (fusedGradient, fusedSecond) = Run(CrossEntropyBackend.Fused);
        var (referenceGradient, referenceSecond) = Run(CrossEntropyBackend.LibTorch);
        TestTensors.AssertClose(referenceGradient, fusedGradient, 1e-12, "gradient");
        for (int i = 0; i < referenceSecond.Length; i++)
        {
            Assert.True(referenceSecond[i].abs().max().item<double>() > 1e-6, "the reference second derivative must not be zero");
            TestTensors.AssertClose(referenceSecond[i], fusedSecond[i], 1e-12, $"second derivative {i}");
        }
    }

    [Fact]
    public void FusedFloat32SecondDerivativesMatchLibTorch()
    {
        using var scope = NewDisposeScope();
        var logits = TestTensors.Logits([Rows, Classes], ScalarType.Float32, seed: 31);
        var target = TestTensors.Targets([Rows], Classes, seed: 32);
        var options = new CrossEntropyOptions { LabelSmoothing = 0.1 };

        Tensor HessianDiagonalSum(CrossEntropyBackend backend)
        {
            using var loss = new TokenCrossEntropy(options with { Backend = backend });
            var gradient = autograd.grad([loss.forward(logits, target)], [logits], retain_graph: true, create_graph: true)[0];
            return autograd.grad([gradient.square().sum()], [logits])[0];
        }

        TestTensors.AssertClose(HessianDiagonalSum(CrossEntropyBackend.LibTorch), HessianDiagonalSum(CrossEntropyBackend.Fused), 1e-5, "second derivative");
    }

    [Theory]
    [InlineData(nn.Reduction.Mean, true)]
    [InlineData(nn.Reduction.None, true)]
    [InlineData(nn.Reduction.Sum, false)]
    public void ChunkedHeadSecondDerivativesMatchThePlainHead(nn.Reduction reduction, bool withBias)
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(41);
        var hidden = randn([Rows, 6], ScalarType.Float64, generator: gen).requires_grad_(true);
        var weight = randn([Classes, 6], ScalarType.Float64, generator: gen).requires_grad_(true);
        var bias = withBias ? randn([Classes], ScalarType.Float64, generator: gen).requires_grad_(true) : null;
        var target = TestTensors.Targets([Rows], Classes, seed: 42, ignoreFraction: 0.2);
        var options = new CrossEntropyOptions { Reduction = reduction, LabelSmoothing = 0.1, ZLossWeight = 1e-3 };
        var parameters = bias is null ? new[] { hidden, weight } : [hidden, weight, bias];
        var probes = parameters.Select((p, i) => randn(p.shape, ScalarType.Float64, generator: new Generator((ulong)(50 + i)))).ToArray();
        var rowWeights = rand([Rows], ScalarType.Float64, generator: new Generator(49));

        (Tensor[] Gradients, Tensor[] Second) Run(Func<Tensor> loss)
        {
            var value = loss();
            var total = reduction == nn.Reduction.None ? (value * rowWeights).sum() : value;
            var gradients = autograd.grad([total], parameters, retain_graph: true, create_graph: true);
            var product = gradients.Zip(probes, (g, p) => (g * p).sum()).Aggregate((a, b) => a + b);
            return (gradients.Select(g => g.detach()).ToArray(), autograd.grad([product], parameters).ToArray());
        }

        using var head = new ChunkedLinearCrossEntropy(options, chunkSize: 5);
        using var plain = new TokenCrossEntropy(options with { Backend = CrossEntropyBackend.LibTorch });
        var (gradients, second) = Run(() => head.Compute(hidden, weight, target, bias: bias).Loss);
        var (referenceGradients, referenceSecond) = Run(() => plain.forward(nn.functional.linear(hidden, weight, bias), target));
        for (int i = 0; i < parameters.Length; i++)
        {
            TestTensors.AssertClose(referenceGradients[i], gradients[i], 1e-10, $"gradient {i}");
            TestTensors.AssertClose(referenceSecond[i], second[i], 1e-10, $"second derivative {i}");
        }
    }

    [Theory]
    [InlineData(nn.Reduction.Mean)]
    [InlineData(nn.Reduction.None)]
    public void FusedRetainedGraphSurvivesNonUnitIncomingGradients(nn.Reduction reduction)
    {
        using var scope = NewDisposeScope();
        var logits = TestTensors.Logits([Rows, Classes], ScalarType.Float64, seed: 61);
        var target = TestTensors.Targets([Rows], Classes, seed: 62, ignoreFraction: 0.2);
        var options = new CrossEntropyOptions { Reduction = reduction, LabelSmoothing = 0.1 };
        var incoming = IncomingGradients(reduction);

        Tensor Accumulated(CrossEntropyBackend backend)
        {
            logits.grad = null;
            using var loss = new TokenCrossEntropy(options with { Backend = backend });
            var value = loss.forward(logits, target);
            for (int i = 0; i < incoming.Length; i++)
                value.backward([incoming[i]], retain_graph: i < incoming.Length - 1);
            return logits.grad!.clone();
        }

        TestTensors.AssertClose(Accumulated(CrossEntropyBackend.LibTorch), Accumulated(CrossEntropyBackend.Fused), 1e-12, "accumulated gradient");
    }

    [Theory]
    [InlineData(nn.Reduction.Mean)]
    [InlineData(nn.Reduction.None)]
    public void ChunkedHeadRetainedGraphSurvivesNonUnitIncomingGradients(nn.Reduction reduction)
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(71);
        var hidden = randn([Rows, 6], ScalarType.Float64, generator: gen).requires_grad_(true);
        var weight = randn([Classes, 6], ScalarType.Float64, generator: gen).requires_grad_(true);
        var bias = randn([Classes], ScalarType.Float64, generator: gen).requires_grad_(true);
        var target = TestTensors.Targets([Rows], Classes, seed: 72, ignoreFraction: 0.2);
        var options = new CrossEntropyOptions { Reduction = reduction, LabelSmoothing = 0.1 };
        var incoming = IncomingGradients(reduction);

        Tensor[] Accumulated(Func<Tensor> loss)
        {
            hidden.grad = weight.grad = bias.grad = null;
            var value = loss();
            for (int i = 0; i < incoming.Length; i++)
                value.backward([incoming[i]], retain_graph: i < incoming.Length - 1);
            return [hidden.grad!.clone(), weight.grad!.clone(), bias.grad!.clone()];
        }

        using var head = new ChunkedLinearCrossEntropy(options, chunkSize: 5);
        using var plain = new TokenCrossEntropy(options with { Backend = CrossEntropyBackend.LibTorch });
        var actual = Accumulated(() => head.Compute(hidden, weight, target, bias: bias).Loss);
        var expected = Accumulated(() => plain.forward(nn.functional.linear(hidden, weight, bias), target));
        for (int i = 0; i < expected.Length; i++)
            TestTensors.AssertClose(expected[i], actual[i], 1e-10, $"accumulated gradient {i}");
    }

    /// <summary>1, then a non-unit gradient, then 1 again: the first and last backward hand over the stored gradient itself.</summary>
    private static Tensor[] IncomingGradients(nn.Reduction reduction) => reduction == nn.Reduction.None
        ? [ones([Rows], ScalarType.Float64), rand([Rows], ScalarType.Float64, generator: new Generator(81)) * 3, ones([Rows], ScalarType.Float64)]
        : [tensor(1.0, ScalarType.Float64), tensor(2.5, ScalarType.Float64), tensor(1.0, ScalarType.Float64)];
}
