using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss.Tests.Kernels;

/// <summary>The fused CPU kernel against libtorch: same loss, gradients and totals for every option.</summary>
public class FusedCrossEntropyTests
{
    public static TheoryData<long, long, double, SmoothingKind, double, nn.Reduction, bool, bool> Cases()
    {
        var data = new TheoryData<long, long, double, SmoothingKind, double, nn.Reduction, bool, bool>();
        // rows, classes, ε, smoothing, z-loss, reduction, loss mask, normalizer
        data.Add(1, 1, 0, SmoothingKind.Uniform, 0, nn.Reduction.Mean, false, false);
        data.Add(7, 2, 0.6, SmoothingKind.OtherClasses, 0, nn.Reduction.Mean, false, false); // ε' = 1.2 > 1
        data.Add(33, 5, 0.1, SmoothingKind.Uniform, 1e-3, nn.Reduction.Sum, true, false);
        data.Add(64, 1000, 0, SmoothingKind.Uniform, 0, nn.Reduction.Mean, false, false);
        data.Add(64, 1000, 0.1, SmoothingKind.Uniform, 0, nn.Reduction.Mean, true, false);
        data.Add(40, 5000, 0.1, SmoothingKind.OtherClasses, 1e-4, nn.Reduction.None, false, false); // several L1 blocks per row
        data.Add(50, 4097, 0.2, SmoothingKind.Uniform, 1e-4, nn.Reduction.Mean, true, true);
        data.Add(300, 1024, 0.05, SmoothingKind.Uniform, 0, nn.Reduction.Sum, false, true);  // parallel tasks
        data.Add(2000, 65, 0.1, SmoothingKind.Uniform, 0, nn.Reduction.Mean, true, false);
        data.Add(9, 9000, 0.3, SmoothingKind.OtherClasses, 0, nn.Reduction.None, true, false);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesLibTorchFloat32(long rows, long classes, double epsilon, SmoothingKind kind, double zLoss, nn.Reduction reduction, bool mask, bool normalizer)
        => AssertParity(rows, classes, new CrossEntropyOptions { LabelSmoothing = epsilon, Smoothing = kind, ZLossWeight = zLoss, Reduction = reduction }, mask, normalizer, ScalarType.Float32, 1e-5);

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesLibTorchFloat64(long rows, long classes, double epsilon, SmoothingKind kind, double zLoss, nn.Reduction reduction, bool mask, bool normalizer)
        => AssertParity(rows, classes, new CrossEntropyOptions { LabelSmoothing = epsilon, Smoothing = kind, ZLossWeight = zLoss, Reduction = reduction }, mask, normalizer, ScalarType.Float64, 1e-12);

    [Fact]
    public void CausalLossMatchesLibTorch()
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(11);
        var logits = (randn([3, 17, 2048], generator: gen) * 3).requires_grad_(true);
        var labels = randint(0, 2048, [3, 17], generator: gen);
        labels[0, 5] = tensor(-100L);
        var mask = rand([3, 17], generator: gen).gt(0.2);
        var options = new CrossEntropyOptions { LabelSmoothing = 0.1, ZLossWeight = 1e-4 };
        using var fused = new TokenCrossEntropy(options with { Causal = true, Backend = CrossEntropyBackend.Fused });
        using var reference = new TokenCrossEntropy(options with { Causal = true, Backend = CrossEntropyBackend.LibTorch });
        long normalizer = new CrossEntropyOptions { Causal = true }.CountTokens(labels, mask) + 3;
        var (loss, grad, totals) = Run(() => fused.Compute(logits, labels, mask, normalizer), logits, null);
        var (refLoss, refGrad, refTotals) = Run(() => reference.Compute(logits, labels, mask, normalizer), logits, null);
        AssertClose(refLoss, loss, 1e-5, "loss");
        AssertClose(refGrad, grad, 1e-5, "gradient");
        Assert.Equal(refTotals, totals, new TotalsComparer(1e-6));
    }

    [Fact]
    public void AutoPicksTheFusedKernelOnlyForLargeContiguousCpuFloat32()
    {
        using var scope = NewDisposeScope();
        long big = FusedCrossEntropyPath.AutoMinimumClasses;
        Assert.True(FusedCrossEntropyPath.IsSelected(zeros(4, big), CrossEntropyBackend.Auto));
        Assert.False(FusedCrossEntropyPath.IsSelected(zeros(4, big - 1), CrossEntropyBackend.Auto));
        Assert.False(FusedCrossEntropyPath.IsSelected(zeros(4, big, ScalarType.Float64), CrossEntropyBackend.Auto));
        Assert.False(FusedCrossEntropyPath.IsSelected(zeros(4, big, ScalarType.BFloat16), CrossEntropyBackend.Auto));
        Assert.False(FusedCrossEntropyPath.IsSelected(zeros(big, 4).t(), CrossEntropyBackend.Auto));
        Assert.False(FusedCrossEntropyPath.IsSelected(zeros(4, big), CrossEntropyBackend.LibTorch));
        Assert.True(FusedCrossEntropyPath.IsSelected(zeros(4, 3), CrossEntropyBackend.Fused));
    }

    [Theory]
    [InlineData(64, 2, true)]
    [InlineData(4096, 2, true)]
    [InlineData(32768, 2, false)]   // the one grid region where libtorch was faster
    [InlineData(1L << 21, 2, true)] // memory-bound again: the threshold scan
    [InlineData(32768, 65, true)]
    [InlineData(64, 128000, true)]
    [InlineData(32768, 1000, true)]
    [InlineData(100, 1, false)]
    public void AutoFollowsTheMeasuredDispatchGrid(long rows, long classes, bool fused)
    {
        Assert.Equal(fused, FusedCrossEntropyPath.AutoPrefersFused(rows, classes));
        using var scope = NewDisposeScope();
        var logits = empty([rows, classes]); // pages never touched: no memory cost
        Assert.Equal(fused, FusedCrossEntropyPath.IsSelected(logits, CrossEntropyBackend.Auto));
    }

    [Fact]
    public void AutosDecisionAllocatesNothing()
    {
        // Auto's cost over the path it picks is this decision; reading logits.shape (a new array per call) once made
        // it cost up to 6 % of the smallest calls.
        using var scope = NewDisposeScope();
        var logits = empty([64, 65]);
        bool picked = FusedCrossEntropyPath.IsSelected(logits, CrossEntropyBackend.Auto);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++) picked &= FusedCrossEntropyPath.IsSelected(logits, CrossEntropyBackend.Auto);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(picked);
        Assert.Equal(0, allocated);
    }

    [Fact]
    public void ForcedFusedRejectsOtherDevicesByName()
    {
        using var scope = NewDisposeScope();
        var logits = empty([4, 10], device: new Device(DeviceType.META));
        var e = Assert.Throws<ArgumentException>(() => FusedCrossEntropyPath.IsSelected(logits, CrossEntropyBackend.Fused));
        Assert.Contains("CPU only", e.Message);
    }

    [Fact]
    public void UnknownBackendIsRejected()
    {
        var e = Assert.Throws<ArgumentException>(() => new TokenCrossEntropy(new CrossEntropyOptions { Backend = (CrossEntropyBackend)7 }));
        Assert.Contains("backend", e.Message);
    }

    [Fact]
    public void ForcedFusedHandlesNonContiguousAndHalfLogits()
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(5);
        var baseLogits = randn([300, 8], generator: gen);
        var target = randint(0, 300, [8], generator: gen);
        using var fused = new TokenCrossEntropy(new CrossEntropyOptions { LabelSmoothing = 0.1, Backend = CrossEntropyBackend.Fused });
        using var reference = new TokenCrossEntropy(new CrossEntropyOptions { LabelSmoothing = 0.1, Backend = CrossEntropyBackend.LibTorch });

        var strided = baseLogits.t().requires_grad_(true); // [8, 300], not contiguous
        Assert.False(strided.is_contiguous());
        var (loss, grad, _) = Run(() => fused.Compute(strided, target), strided, null);
        var (refLoss, refGrad, _) = Run(() => reference.Compute(strided, target), strided, null);
        AssertClose(refLoss, loss, 1e-5, "loss");
        AssertClose(refGrad, grad, 1e-5, "gradient");

        var half = baseLogits.t().contiguous().to(ScalarType.BFloat16).requires_grad_(true);
        var (halfLoss, halfGrad, _) = Run(() => fused.Compute(half, target), half, null);
        var (refHalfLoss, refHalfGrad, _) = Run(() => reference.Compute(half, target), half, null);
        Assert.Equal(ScalarType.BFloat16, halfGrad.dtype);
        AssertClose(refHalfLoss, halfLoss, 1e-5, "bfloat16 loss");
        AssertClose(refHalfGrad.to(ScalarType.Float32), halfGrad.to(ScalarType.Float32), 1e-2, "bfloat16 gradient");
    }

    [Fact]
    public void WithoutGradientTheLossIsUnchanged()
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(3);
        var logits = randn([16, 3000], generator: gen);
        var target = randint(0, 3000, [16], generator: gen);
        using var fused = new TokenCrossEntropy(new CrossEntropyOptions { LabelSmoothing = 0.1, Backend = CrossEntropyBackend.Fused });
        using var reference = new TokenCrossEntropy(new CrossEntropyOptions { LabelSmoothing = 0.1, Backend = CrossEntropyBackend.LibTorch });
        Tensor loss;
        using (no_grad()) loss = fused.forward(logits.requires_grad_(true), target);
        Assert.False(loss.requires_grad);
        AssertClose(reference.forward(logits, target).detach(), loss, 1e-5, "loss");
    }

    [Fact]
    public void GradientIsScaledByTheIncomingGradient()
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(9);
        var logits = randn([6, 2000], generator: gen, requires_grad: true);
        var target = randint(0, 2000, [6], generator: gen);
        using var fused = new TokenCrossEntropy(new CrossEntropyOptions { Backend = CrossEntropyBackend.Fused });
        using var reference = new TokenCrossEntropy(new CrossEntropyOptions { Backend = CrossEntropyBackend.LibTorch });
        (fused.forward(logits, target) * 2.5).backward();
        var grad = logits.grad!.clone();
        logits.grad!.zero_();
        (reference.forward(logits, target) * 2.5).backward();
        AssertClose(logits.grad!, grad, 1e-5, "gradient");
    }

    [Fact]
    public void NonFiniteLogitsPropagateLikeLibTorch()
    {
        using var scope = NewDisposeScope();
        var logits = randn(3, 1500);
        logits[1, 7] = tensor(float.NaN);
        var target = tensor(new long[] { 0, 1, 2 });
        using var fused = new TokenCrossEntropy(new CrossEntropyOptions { Backend = CrossEntropyBackend.Fused, Reduction = nn.Reduction.None });
        using var reference = new TokenCrossEntropy(new CrossEntropyOptions { Backend = CrossEntropyBackend.LibTorch, Reduction = nn.Reduction.None });
        var a = fused.forward(logits, target);
        var b = reference.forward(logits, target);
        Assert.Equal(b.isnan().data<bool>().ToArray(), a.isnan().data<bool>().ToArray());
    }

    private static void AssertParity(long rows, long classes, CrossEntropyOptions options, bool withMask, bool withNormalizer, ScalarType dtype, double tolerance)
    {
        using var scope = NewDisposeScope();
        var gen = new Generator((ulong)(rows * 7919 + classes));
        var logits = (randn([rows, classes], dtype: dtype, generator: gen) * 4).requires_grad_(true);
        var target = randint(0, classes, [rows], generator: gen);
        // About 10% ignored.
        target = target.masked_fill(rand([rows], generator: gen).lt(0.1), options.IgnoreIndex);
        Tensor? mask = withMask ? rand([rows], generator: gen).gt(0.3) : null;
        long? normalizer = withNormalizer ? rows + 5 : null;
        Tensor? gradOutput = options.Reduction == nn.Reduction.None ? rand([rows], dtype: dtype, generator: gen) : null;

        using var fused = new TokenCrossEntropy(options with { Backend = CrossEntropyBackend.Fused });
        using var reference = new TokenCrossEntropy(options with { Backend = CrossEntropyBackend.LibTorch });
        var (loss, grad, totals) = Run(() => fused.Compute(logits, target, mask, normalizer), logits, gradOutput);
        var (refLoss, refGrad, refTotals) = Run(() => reference.Compute(logits, target, mask, normalizer), logits, gradOutput);

        Assert.Equal(refLoss.dtype, loss.dtype);
        Assert.Equal(refLoss.shape, loss.shape);
        AssertClose(refLoss, loss, tolerance, "loss");
        AssertClose(refGrad, grad, tolerance, "gradient");
        Assert.Equal(refTotals, totals, new TotalsComparer(dtype == ScalarType.Float64 ? 1e-12 : 1e-6));
    }

    private sealed record Totals(double NllSum, long TokenCount, double ZLossSum);

    private sealed class TotalsComparer(double tolerance) : IEqualityComparer<Totals>
    {
        public bool Equals(Totals? x, Totals? y) =>
            x!.TokenCount == y!.TokenCount && Near(x.NllSum, y.NllSum) && Near(x.ZLossSum, y.ZLossSum);

        private bool Near(double a, double b) => Math.Abs(a - b) <= tolerance * Math.Max(1, Math.Abs(b));

        public int GetHashCode(Totals obj) => 0;
    }

    private static (Tensor Loss, Tensor Grad, Totals Totals) Run(Func<LossResult> compute, Tensor logits, Tensor? gradOutput)
    {
        logits.grad?.zero_();
        using var result = compute();
        Assert.Equal(ScalarType.Float64, result.NllSum.dtype);
        Assert.Equal(ScalarType.Int64, result.TokenCount.dtype);
        Assert.Equal(0, result.NllSum.dim());
        if (gradOutput is null) result.Loss.backward();
        else result.Loss.backward([gradOutput]);
        var totals = new Totals(result.NllSum.item<double>(), result.TokenCount.item<long>(), result.ZLossSum.item<double>());
        return (result.Loss.detach().clone(), logits.grad!.clone(), totals);
    }

    private static void AssertClose(Tensor expected, Tensor actual, double relative, string what)
    {
        var e = expected.to(ScalarType.Float64);
        var a = actual.to(ScalarType.Float64);
        double scale = Math.Max(e.abs().max().item<double>(), 1e-30);
        double error = (e - a).abs().max().item<double>();
        Assert.True(error <= relative * scale, $"{what}: max |difference| {error:E3} exceeds {relative:E1} × max |expected| {scale:E3}");
    }
}
