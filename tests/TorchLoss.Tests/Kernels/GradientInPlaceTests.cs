using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

using Kernel = TorchLoss.Kernels.FusedCrossEntropyFunction;

namespace TorchLoss.Tests.Kernels;

/// <summary><see cref="CrossEntropyOptions.GradientInPlace"/>: same loss, totals and gradients as the plain fused path, and every refusal.</summary>
public class GradientInPlaceTests
{
    public static TheoryData<double, double, nn.Reduction, bool, bool, bool> Cases() => new()
    {
        // ε, z-loss, reduction, class weights, causal, float64
        { 0, 0, nn.Reduction.Mean, false, false, false },
        { 0.1, 0, nn.Reduction.Mean, false, false, false },
        { 0.1, 1e-4, nn.Reduction.Sum, true, false, false },
        { 0.2, 0, nn.Reduction.None, false, false, true },
        { 0.1, 0, nn.Reduction.Mean, false, true, false },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesTheFusedPathAndOverwritesTheLogits(double epsilon, double zLoss, nn.Reduction reduction, bool classWeights, bool causal, bool float64)
    {
        using var scope = NewDisposeScope();
        var dtype = float64 ? ScalarType.Float64 : ScalarType.Float32;
        const long rows = 96, width = 16, classes = 3000;
        var gen = new Generator(5);
        var hidden = randn([rows, width], dtype: dtype, generator: gen).requires_grad_(true);
        var weight = randn([classes, width], dtype: dtype, generator: gen).requires_grad_(true);
        var target = randint(0, classes, [rows], generator: gen).masked_fill(rand([rows], generator: gen).lt(0.1), CrossEntropyOptions.Default.IgnoreIndex);
        var options = new CrossEntropyOptions
        {
            LabelSmoothing = epsilon, ZLossWeight = zLoss, Reduction = reduction, Backend = CrossEntropyBackend.Fused,
            ClassWeights = classWeights ? Enumerable.Range(0, (int)classes).Select(c => 0.5 + c % 3).ToArray() : null,
        };
        Tensor? gradOutput = reduction == nn.Reduction.None ? rand(causal ? [4, rows / 4] : [rows], dtype: dtype, generator: gen) : null;

        var (loss, nll, logitsGrad, hiddenGrad, weightGrad) = Run(options, hidden, weight, target, causal, gradOutput, inPlace: false);
        var (inPlaceLoss, inPlaceNll, overwritten, inPlaceHiddenGrad, inPlaceWeightGrad) = Run(options with { GradientInPlace = true }, hidden, weight, target, causal, gradOutput, inPlace: true);

        Assert.True(Same(loss, inPlaceLoss), "loss");
        Assert.Equal(nll, inPlaceNll);
        Assert.True(Same(logitsGrad, overwritten), "the logits' storage holds their gradient");
        Assert.True(Same(hiddenGrad, inPlaceHiddenGrad), "hidden gradient");
        Assert.True(Same(weightGrad, inPlaceWeightGrad), "weight gradient");
    }

    private static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    private static (Tensor Loss, double Nll, Tensor LogitsGrad, Tensor HiddenGrad, Tensor WeightGrad) Run(
        CrossEntropyOptions options, Tensor hidden, Tensor weight, Tensor target, bool causal, Tensor? gradOutput, bool inPlace)
    {
        hidden.grad = null;
        weight.grad = null;
        // matmul of 3-D hidden states returns a tensor of its own, not a view (a reshape of the logits would be refused).
        var logits = causal ? hidden.reshape(4, -1, hidden.shape[1]).matmul(weight.t()) : hidden.mm(weight.t());
        if (!inPlace) logits.retain_grad();
        var labels = causal ? target.reshape(4, -1) : target;
        using LossResult result = new TokenCrossEntropy(options with { Causal = causal }).Compute(logits, labels);
        if (gradOutput is null) result.Loss.backward();
        else result.Loss.backward([gradOutput]);
        var logitsGrad = inPlace ? logits.detach().reshape(-1, weight.shape[0]).clone() : logits.grad!.reshape(-1, weight.shape[0]).clone();
        return (result.Loss.detach().clone(), result.NllSum.item<double>(), logitsGrad, hidden.grad!.clone(), weight.grad!.clone());
    }

    [Fact]
    public void RefusesLeafLogits()
    {
        using var scope = NewDisposeScope();
        using var loss = new TokenCrossEntropy(new CrossEntropyOptions { GradientInPlace = true });
        var logits = randn(8, 50).requires_grad_(true);
        var error = Assert.Throws<ArgumentException>(() => loss.forward(logits, randint(0, 50, [8])));
        Assert.Contains("leaf", error.Message);
    }

    [Fact]
    public void AcceptsLeafLogitsWhenNoGradientIsWritten()
    {
        using var scope = NewDisposeScope();
        using var loss = new TokenCrossEntropy(new CrossEntropyOptions { GradientInPlace = true });
        var logits = randn(8, 50);
        var copy = logits.clone();
        var target = randint(0, 50, [8]);
        loss.forward(logits, target);
        using (no_grad()) loss.forward(logits.requires_grad_(true), target);
        Assert.True(Same(logits.detach(), copy));
    }

    [Theory]
    [InlineData("narrow")]
    [InlineData("reshape")]
    public void RefusesViews(string kind)
    {
        using var scope = NewDisposeScope();
        using var loss = new TokenCrossEntropy(new CrossEntropyOptions { GradientInPlace = true });
        var x = randn(2, 4, 6).requires_grad_(true);
        var head = randn(50, 6).requires_grad_(true);
        var logits = kind switch
        {
            "narrow" => x.reshape(8, 6).mm(head.t()).narrow(1, 0, 30),
            _ => x.reshape(8, 6).mm(head.t()).reshape(2, 4, 50),
        };
        var error = Assert.Throws<ArgumentException>(() => loss.forward(logits, randint(0, logits.shape[^1], logits.shape[..^1])));
        Assert.Contains("view", error.Message);
    }

    [Fact]
    public void AutogradRefusesLogitsAnotherNodeSaved()
    {
        using var scope = NewDisposeScope();
        using var loss = new TokenCrossEntropy(new CrossEntropyOptions { GradientInPlace = true });
        var x = randn(8, 50).requires_grad_(true);
        var logits = x.tanh(); // tanh saves its output for its backward
        var value = loss.forward(logits, randint(0, 50, [8]));
        var error = Assert.ThrowsAny<ExternalException>(() => value.backward());
        Assert.Contains("inplace", error.Message);
    }

    [Fact]
    public void RefusesASecondBackwardAndCreateGraph()
    {
        // The refusal itself ends the process (TorchSharp cannot carry an exception out of a backward), so its rule is tested here.
        Assert.Null(Kernel.InPlaceRefusal(createGraph: false, alreadyTaken: false));
        Assert.Contains("second backward", Kernel.InPlaceRefusal(createGraph: false, alreadyTaken: true));
        Assert.Contains("create_graph", Kernel.InPlaceRefusal(createGraph: true, alreadyTaken: false));
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.1)]
    public void OnTheLibTorchPathChecksStillRunAndTheLogitsAreKept(double epsilon)
    {
        // The fallback path (accelerators, forced LibTorch) writes a new gradient: same values, the logits untouched.
        using var scope = NewDisposeScope();
        var gen = new Generator(9);
        var hidden = randn([24, 8], generator: gen).requires_grad_(true);
        var weight = randn([40, 8], generator: gen);
        var target = randint(0, 40, [24], generator: gen);
        var options = new CrossEntropyOptions { LabelSmoothing = epsilon, Backend = CrossEntropyBackend.LibTorch };
        using var plain = new TokenCrossEntropy(options);
        using var inPlace = new TokenCrossEntropy(options with { GradientInPlace = true });

        var logits = hidden.mm(weight.t());
        plain.forward(logits, target).backward();
        var expectedGrad = hidden.grad!.clone();
        hidden.grad = null;
        var headOutput = hidden.mm(weight.t());
        var before = headOutput.detach().clone();
        var value = inPlace.forward(headOutput, target);
        value.backward();
        Assert.True(Same(plain.forward(logits.detach(), target), value.detach()), "loss");
        Assert.True(Same(expectedGrad, hidden.grad!), "gradient");
        Assert.True(Same(before, headOutput.detach()), "the logits are not overwritten on the libtorch path");
        Assert.Throws<ArgumentException>(() => inPlace.forward(randn(8, 40).requires_grad_(true), randint(0, 40, [8])));
    }

    [Fact]
    public void LeavesNoTensorsBehind()
    {
        using var loss = new TokenCrossEntropy(new CrossEntropyOptions { GradientInPlace = true, LabelSmoothing = 0.1 });
        using var x = randn(16, 300).requires_grad_(true);
        using var target = randint(0, 300, [16]);
        LeakCheck.AssertNoGrowth(() =>
        {
            using var step = NewDisposeScope();
            x.grad = null;
            loss.forward(x * 1, target).backward();
        });
    }
}
