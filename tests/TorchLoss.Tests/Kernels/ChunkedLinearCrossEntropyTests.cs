using TorchSharp;
using static TorchSharp.torch;
using HeadFunction = TorchLoss.Kernels.ChunkedLinearCrossEntropyFunction;

namespace TorchLoss.Tests.Kernels;

/// <summary><see cref="ChunkedLinearCrossEntropy"/> against the plain head (matmul, then libtorch's cross-entropy).</summary>
public class ChunkedLinearCrossEntropyTests
{
    public static TheoryData<int?, bool, double, SmoothingKind, double, nn.Reduction, bool, bool> Cases() => new()
    {
        // chunk, bias, ε, smoothing, z-loss, reduction, mask, normalizer
        { null, false, 0, SmoothingKind.Uniform, 0, nn.Reduction.Mean, false, false },
        { 1, true, 0.1, SmoothingKind.Uniform, 0, nn.Reduction.Mean, true, false },
        { 3, false, 0.1, SmoothingKind.OtherClasses, 1e-3, nn.Reduction.Sum, false, true },
        { 4, true, 0.2, SmoothingKind.Uniform, 1e-4, nn.Reduction.None, true, false },
        { 7, true, 0.6, SmoothingKind.OtherClasses, 0, nn.Reduction.Mean, false, true },
        { 64, false, 0, SmoothingKind.Uniform, 0, nn.Reduction.None, false, false },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesThePlainHeadFloat64(int? chunk, bool withBias, double epsilon, SmoothingKind kind, double zLoss, nn.Reduction reduction, bool mask, bool normalizer)
        => AssertParity(chunk, withBias, new CrossEntropyOptions { LabelSmoothing = epsilon, Smoothing = kind, ZLossWeight = zLoss, Reduction = reduction }, mask, normalizer, ScalarType.Float64, 1e-10);

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesThePlainHeadFloat32(int? chunk, bool withBias, double epsilon, SmoothingKind kind, double zLoss, nn.Reduction reduction, bool mask, bool normalizer)
        => AssertParity(chunk, withBias, new CrossEntropyOptions { LabelSmoothing = epsilon, Smoothing = kind, ZLossWeight = zLoss, Reduction = reduction }, mask, normalizer, ScalarType.Float32, 1e-4);

    [Theory]
    [InlineData(nn.Reduction.Mean, false, false)]
    [InlineData(nn.Reduction.Sum, true, true)]
    [InlineData(nn.Reduction.None, true, false)]
    public void CausalModeMatchesCausalLMLossOnTheFullLogits(nn.Reduction reduction, bool withMask, bool withNormalizer)
    {
        using var scope = NewDisposeScope();
        const long batch = 3, time = 6, width = 8, vocab = 29;
        var gen = new Generator(31);
        var hidden = randn([batch, time, width], dtype: ScalarType.Float64, generator: gen).requires_grad_(true);
        var weight = randn([vocab, width], dtype: ScalarType.Float64, generator: gen).requires_grad_(true);
        var labels = randint(0, vocab, [batch, time], generator: gen).masked_fill(rand([batch, time], generator: gen).lt(0.2), -100);
        Tensor? mask = withMask ? rand([batch, time], generator: gen).gt(0.25) : null;
        long? normalizer = withNormalizer ? new CrossEntropyOptions { Causal = true }.CountTokens(labels, mask) + 2 : null;
        Tensor? gradOutput = reduction == nn.Reduction.None ? rand([batch, time], dtype: ScalarType.Float64, generator: gen) : null;
        var options = new CrossEntropyOptions { LabelSmoothing = 0.1, ZLossWeight = 1e-3, Reduction = reduction };
        Tensor?[] parameters = [hidden, weight];

        using var head = new ChunkedLinearCrossEntropy(options, chunkSize: 4, causal: true);
        using var causal = new TokenCrossEntropy(options with { Causal = true, Backend = CrossEntropyBackend.LibTorch });
        // Both take the same unshifted labels, in the same argument order.
        var fused = Run(() => head.Compute(hidden, weight, labels, mask, normalizer), parameters, gradOutput);
        var reference = Run(() => causal.Compute(hidden.matmul(weight.t()), labels, mask, normalizer), parameters, gradOutput);
        for (int i = 0; i < fused.Count; i++)
            Assert.True(allclose(reference[i], fused[i], rtol: 1e-10, atol: 1e-12), $"output {i} differs");
    }

    [Fact]
    public void CausalModeRejectsHiddenWithoutATimeDimension()
    {
        using var scope = NewDisposeScope();
        using var head = new ChunkedLinearCrossEntropy(causal: true);
        var error = Assert.Throws<ArgumentException>(() => head.forward(randn(4, 8), randn(10, 8), randint(0, 10, [4])));
        Assert.Contains("[B, T, d]", error.Message);
        error = Assert.Throws<ArgumentException>(() => head.forward(randn(2, 1, 8), randn(10, 8), randint(0, 10, [2, 1])));
        Assert.Contains("at least 2 tokens", error.Message);
    }

    [Fact]
    public void AcceptsLeadingDimensionsAndWeightWithoutGradient()
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(4);
        var hidden = randn([2, 5, 8], dtype: ScalarType.Float64, generator: gen, requires_grad: true);
        var weight = randn([30, 8], dtype: ScalarType.Float64, generator: gen);
        var target = randint(0, 30, [2, 5], generator: gen);
        using var head = new ChunkedLinearCrossEntropy(chunkSize: 3);
        using var plain = new TokenCrossEntropy();
        head.forward(hidden, weight, target).backward();
        var grad = hidden.grad!.clone();
        hidden.grad!.zero_();
        plain.forward(hidden.matmul(weight.t()), target).backward();
        Assert.True(allclose(grad, hidden.grad!, rtol: 1e-10, atol: 1e-12));
        Assert.Null(weight.grad);
    }

    [Fact]
    public void WithoutGradientOnlyTheLossIsComputed()
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(8);
        var hidden = randn([9, 6], generator: gen, requires_grad: true);
        var weight = randn([40, 6], generator: gen, requires_grad: true);
        var target = randint(0, 40, [9], generator: gen);
        using var head = new ChunkedLinearCrossEntropy(new CrossEntropyOptions { LabelSmoothing = 0.1 }, chunkSize: 2);
        using var plain = new TokenCrossEntropy(new CrossEntropyOptions { LabelSmoothing = 0.1 });
        Tensor loss;
        using (no_grad()) loss = head.forward(hidden, weight, target);
        Assert.False(loss.requires_grad);
        Assert.Equal(plain.forward(hidden.mm(weight.t()), target).item<float>(), loss.item<float>(), 1e-5);
    }

    [Fact]
    public void BadShapesAreRejectedByName()
    {
        using var scope = NewDisposeScope();
        using var head = new ChunkedLinearCrossEntropy();
        var hidden = randn(4, 8);
        var target = randint(0, 10, [4]);
        Assert.Contains("weight must be [V, d] with d = 8", Assert.Throws<ArgumentException>(() => head.forward(hidden, randn(10, 7), target)).Message);
        Assert.Contains("target shape [5]", Assert.Throws<ArgumentException>(() => head.forward(hidden, randn(10, 8), randint(0, 10, [5]))).Message);
        Assert.Contains("bias must be [V] = [10]", Assert.Throws<ArgumentException>(() => head.Compute(hidden, randn(10, 8), target, bias: randn(9))).Message);
        Assert.Contains("weight is Float64", Assert.Throws<ArgumentException>(() => head.forward(hidden, randn(10, 8, ScalarType.Float64), target)).Message);
        Assert.Contains("outside [0, 10)", Assert.Throws<ArgumentException>(() => head.forward(hidden, randn(10, 8), tensor(new long[] { 0, 1, 2, 10 }))).Message);
        Assert.Throws<ArgumentException>(() => new ChunkedLinearCrossEntropy(chunkSize: 0));
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.1)]
    public void GradientFilterSkipsNegligibleColumnsWithinTolerance(double epsilon)
    {
        // A peaked head: 5 % of the vocabulary active, the rest about 30 nats lower (float32 softmax ≈ 1e-13 there).
        using var scope = NewDisposeScope();
        var (hidden, weight, bias, target) = PeakedHead(rows: 40, width: 16, classes: 400, seed: 5);
        var options = new CrossEntropyOptions { LabelSmoothing = epsilon };
        Tensor?[] parameters = [hidden, weight, bias];
        using var plain = new TokenCrossEntropy(options with { Backend = CrossEntropyBackend.LibTorch });
        var reference = Run(() => plain.Compute(hidden.mm(weight.t()) + bias, target), parameters, null);

        using var filtered = new ChunkedLinearCrossEntropy(options, chunkSize: 8);
        var approximate = Run(() => filtered.Compute(hidden, weight, target, bias: bias), parameters, null);
        Assert.InRange(HeadFunction.LastActiveFraction, 0.0, 0.2);
        AssertClose(reference, approximate, 1e-4);

        using var exact = new ChunkedLinearCrossEntropy(options, chunkSize: 8, gradientFilter: 0);
        var exactResult = Run(() => exact.Compute(hidden, weight, target, bias: bias), parameters, null);
        Assert.Equal(1.0, HeadFunction.LastActiveFraction);
        // Exact mode: float32 rounding only (a few ulps of the largest value, from a different summation order).
        AssertClose(reference, exactResult, 2e-6);
        // The filter changes gradients only, never the loss or its totals.
        for (int i = 0; i < 4; i++) Assert.True(allclose(approximate[i], exactResult[i], rtol: 0, atol: 0), $"output {i} depends on the filter");
    }

    [Fact]
    public void DefaultFilterSkipsNothingAtRandomInitialisation()
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(12);
        var hidden = randn([64, 32], generator: gen).requires_grad_(true);
        var weight = (randn([500, 32], generator: gen) / Math.Sqrt(32)).requires_grad_(true);
        var target = randint(0, 500, [64], generator: gen);
        using var head = new ChunkedLinearCrossEntropy(chunkSize: 16);
        head.forward(hidden, weight, target).backward();
        Assert.Equal(1.0, HeadFunction.LastActiveFraction);
    }

    [Theory]
    [InlineData(-1e-3)]
    [InlineData(1.0)]
    [InlineData(double.NaN)]
    public void GradientFilterOutsideTheUnitIntervalIsRejected(double filter)
    {
        var error = Assert.Throws<ArgumentException>(() => new ChunkedLinearCrossEntropy(gradientFilter: filter));
        Assert.Contains("gradientFilter must be in [0, 1)", error.Message);
    }

    /// <summary>Leaf hidden, weight, bias and targets whose softmax puts its mass on the first 5 % of the classes.</summary>
    private static (Tensor Hidden, Tensor Weight, Tensor Bias, Tensor Target) PeakedHead(long rows, long width, long classes, ulong seed)
    {
        var gen = new Generator(seed);
        long active = classes / 20;
        var hidden = randn([rows, width], generator: gen).requires_grad_(true);
        var weight = (randn([classes, width], generator: gen) / Math.Sqrt(width)).requires_grad_(true);
        var bias = full([classes], -30f).index_fill_(0, arange(active), 0f).requires_grad_(true);
        var target = randint(0, active, [rows], generator: gen);
        return (hidden, weight, bias, target);
    }

    private static void AssertClose(List<Tensor> reference, List<Tensor> actual, double tolerance)
    {
        for (int i = 0; i < actual.Count; i++)
        {
            var (expected, got) = (reference[i].to(ScalarType.Float64), actual[i].to(ScalarType.Float64));
            Assert.Equal(expected.shape, got.shape);
            double scale = Math.Max(expected.abs().max().item<double>(), 1e-30);
            double error = (expected - got).abs().max().item<double>();
            Assert.True(error <= tolerance * scale, $"output {i}: max |difference| {error:E3} exceeds {tolerance:E1} × {scale:E3}");
        }
    }

    private static void AssertParity(int? chunk, bool withBias, CrossEntropyOptions options, bool withMask, bool withNormalizer, ScalarType dtype, double tolerance)
    {
        using var scope = NewDisposeScope();
        const long rows = 23, width = 16, classes = 37;
        var gen = new Generator(17);
        var hidden = randn([rows, width], dtype: dtype, generator: gen).requires_grad_(true);
        var weight = randn([classes, width], dtype: dtype, generator: gen).requires_grad_(true);
        var bias = withBias ? randn([classes], dtype: dtype, generator: gen).requires_grad_(true) : null;
        var target = randint(0, classes, [rows], generator: gen).masked_fill(rand([rows], generator: gen).lt(0.15), options.IgnoreIndex);
        Tensor? mask = withMask ? rand([rows], generator: gen).gt(0.3) : null;
        long? normalizer = withNormalizer ? rows + 2 : null;
        Tensor? gradOutput = options.Reduction == nn.Reduction.None ? rand([rows], dtype: dtype, generator: gen) : null;
        Tensor?[] parameters = [hidden, weight, bias];

        using var head = new ChunkedLinearCrossEntropy(options, chunk);
        using var plain = new TokenCrossEntropy(options with { Backend = CrossEntropyBackend.LibTorch });
        var chunked = Run(() => head.Compute(hidden, weight, target, mask, normalizer, bias), parameters, gradOutput);
        var reference = Run(() =>
        {
            var logits = hidden.mm(weight.t());
            if (bias is not null) logits = logits + bias;
            return plain.Compute(logits, target, mask, normalizer);
        }, parameters, gradOutput);

        AssertClose(reference, chunked, tolerance);
    }

    /// <summary>Loss, NLL sum, token count, z-loss sum and the gradients of the given parameters.</summary>
    private static List<Tensor> Run(Func<LossResult> compute, Tensor?[] parameters, Tensor? gradOutput)
    {
        foreach (var p in parameters) p?.grad?.zero_();
        using var result = compute();
        if (gradOutput is null) result.Loss.backward();
        else result.Loss.backward([gradOutput]);
        var outputs = new List<Tensor> { result.Loss.detach().clone(), result.NllSum.clone(), result.TokenCount.to(ScalarType.Float64), result.ZLossSum.clone() };
        outputs.AddRange(parameters.Where(p => p is not null).Select(p => p!.grad!.clone()));
        return outputs;
    }
}
