using TorchSharp;
using static TorchLoss.Tests.TestTensors;
using static TorchSharp.torch;

namespace TorchLoss.Tests.Preference;

/// <summary><see cref="SequenceLogProbs"/> against float64 PyTorch goldens, across backends and dtypes, with its gradient and its checks.</summary>
public class SequenceLogProbsTests
{
    public static TheoryData<CrossEntropyBackend> Backends() => new(CrossEntropyBackend.Fused, CrossEntropyBackend.LibTorch);

    [Theory]
    [MemberData(nameof(Backends))]
    public void MatchesTheFloat64GoldenWithLeftAndRightPadding(CrossEntropyBackend backend)
    {
        using var scope = NewDisposeScope();
        var logits = PreferenceGolden.PolicyLogits();
        using var logps = SequenceLogProbs.Compute(logits, PreferenceGolden.Labels(), PreferenceGolden.CompletionMask(), backend: backend);

        var golden = PreferenceGolden.Sequence;
        AssertClose(tensor(PreferenceGolden.Doubles(golden.GetProperty("sum"))), logps.Sum, 1e-13, "sum");
        AssertClose(tensor(PreferenceGolden.Doubles(golden.GetProperty("mean"))), logps.Mean, 1e-13, "mean");
        Assert.Equal(golden.GetProperty("count").EnumerateArray().Select(e => e.GetInt64()), logps.TokenCount.data<long>().ToArray());

        logps.Sum.sum().backward();
        AssertClose(tensor(PreferenceGolden.Doubles(golden.GetProperty("gradient_of_total"))).reshape(logits.shape), logits.grad!, 1e-13, "gradient");
    }

    [Fact]
    public void Float32IsAtLeastAsAccurateAsTorchsFloat32Path()
    {
        using var scope = NewDisposeScope();
        var truth = tensor(PreferenceGolden.Doubles(PreferenceGolden.Sequence.GetProperty("sum")));
        var labels = PreferenceGolden.Labels();
        var mask = PreferenceGolden.CompletionMask();
        var logits32 = PreferenceGolden.PolicyLogits(ScalarType.Float32);

        using var fused = SequenceLogProbs.Compute(logits32, labels, mask, backend: CrossEntropyBackend.Fused);
        // torch's float32 path: log_softmax, gather and sum, all in float32.
        var targets = cat([labels[.., 1..], full(labels.shape[0], 1, -100L, ScalarType.Int64)], 1);
        var counted = targets.ne(-100) & cat([mask[.., 1..], zeros(labels.shape[0], 1, ScalarType.Bool)], 1);
        var picked = logits32.log_softmax(-1).gather(-1, targets.clamp_min(0).unsqueeze(-1)).squeeze(-1);
        var torchSum = where(counted, picked, zeros_like(picked)).sum(1);

        double fusedError = (fused.Sum.to(ScalarType.Float64) - truth).abs().max().item<double>();
        double torchError = (torchSum.to(ScalarType.Float64) - truth).abs().max().item<double>();
        Assert.Equal(ScalarType.Float32, fused.Sum.dtype);
        Assert.True(fusedError <= Math.Max(torchError, 4e-6), $"fused float32 error {fusedError:G3} exceeds torch's float32 error {torchError:G3}");
    }

    [Fact]
    public void FusedMatchesComposedInFloat32ValuesAndGradients()
    {
        using var scope = NewDisposeScope();
        var labels = PreferenceGolden.Labels();
        var mask = PreferenceGolden.CompletionMask();
        var a = PreferenceGolden.PolicyLogits(ScalarType.Float32);
        var b = PreferenceGolden.PolicyLogits(ScalarType.Float32);
        using var fused = SequenceLogProbs.Compute(a, labels, mask, backend: CrossEntropyBackend.Fused);
        using var composed = SequenceLogProbs.Compute(b, labels, mask, backend: CrossEntropyBackend.LibTorch);
        AssertClose(composed.Sum, fused.Sum, 2e-6, "sum");
        AssertClose(composed.Mean, fused.Mean, 2e-6, "mean");
        var weights = tensor(new float[] { 1, -2, 0.5f, 3, 1, -1 });
        (fused.Sum * weights).sum().backward();
        (composed.Sum * weights).sum().backward();
        AssertClose(b.grad!, a.grad!, 2e-6, "gradient");
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void GradientMatchesFiniteDifferencesInFloat64(CrossEntropyBackend backend)
    {
        using var scope = NewDisposeScope();
        var labels = tensor(new long[] { 3, 1, 4, 1, -100, 2, 0, 4, 4, 1 }, [2, 5]);
        var mask = tensor(new[] { false, false, true, true, true, false, true, true, true, false }, [2, 5]);
        var x = Logits([2, 5, 6], ScalarType.Float64, seed: 11);
        var weights = tensor(new[] { 0.7, -1.3 });
        AssertGradientMatchesFiniteDifferences(
            l =>
            {
                var logps = SequenceLogProbs.Compute(l, labels, mask, backend: backend);
                return (logps.Sum * weights).sum() + (logps.Mean * weights).sum() * 2;
            },
            x);
    }

    [Fact]
    public void HonoursTheIgnoreIndexAndAnotherIgnoreValue()
    {
        using var scope = NewDisposeScope();
        var logits = Logits([1, 4, 5], ScalarType.Float64, seed: 3);
        var logp = logits.log_softmax(-1);
        var withDefault = SequenceLogProbs.Compute(logits, tensor(new long[] { 0, 2, -100, 4 }, [1, 4]));
        double expected = logp[0, 0, 2].item<double>() + logp[0, 2, 4].item<double>();
        Assert.Equal(expected, withDefault.Sum.item<double>(), 12);
        Assert.Equal(2, withDefault.TokenCount.item<long>());
        var withZero = SequenceLogProbs.Compute(logits, tensor(new long[] { 0, 2, 0, 4 }, [1, 4]), ignoreIndex: 0);
        Assert.Equal(expected, withZero.Sum.item<double>(), 12);
    }

    [Fact]
    public void HalfLogitsAreComputedInFloat32()
    {
        using var scope = NewDisposeScope();
        var logits = PreferenceGolden.PolicyLogits(ScalarType.Float32).detach().to(ScalarType.BFloat16);
        using var logps = SequenceLogProbs.Compute(logits, PreferenceGolden.Labels(), PreferenceGolden.CompletionMask());
        Assert.Equal(ScalarType.Float32, logps.Sum.dtype);
    }

    [Fact]
    public void FromValuesKeepsTheSumAndDividesByTheCount()
    {
        using var scope = NewDisposeScope();
        using var cached = SequenceLogProbs.FromValues(tensor(new[] { -4.0, -3.0 }), tensor(new[] { 2, 3 }));
        AssertClose(tensor(new[] { -2.0, -1.0 }), cached.Mean, 1e-15);
        Assert.False(cached.Sum.requires_grad);
        Assert.Throws<ArgumentException>(() => SequenceLogProbs.FromValues(tensor(new[] { -4.0 }), tensor(new[] { 0L })));
        Assert.Throws<ArgumentException>(() => SequenceLogProbs.FromValues(tensor(new[] { -4.0, 1 }), tensor(new[] { 1L })));
    }

    [Fact]
    public void BadInputsGiveClearArgumentExceptions()
    {
        using var scope = NewDisposeScope();
        var logits = Logits([2, 4, 5], ScalarType.Float32, seed: 1);
        var labels = Targets([2, 4], 5, seed: 2);
        var e = Assert.Throws<ArgumentException>(() => SequenceLogProbs.Compute(logits.reshape(8, 5), labels));
        Assert.Contains("[B, T, V]", e.Message);
        e = Assert.Throws<ArgumentException>(() => SequenceLogProbs.Compute(logits, labels[.., ..3]));
        Assert.Contains("[2, 3]", e.Message);
        e = Assert.Throws<ArgumentException>(() => SequenceLogProbs.Compute(logits, labels, ones(2, 3, ScalarType.Bool)));
        Assert.Contains("completionMask", e.Message);
        e = Assert.Throws<ArgumentException>(() => SequenceLogProbs.Compute(logits, labels, ones(2, 4, ScalarType.Int64)));
        Assert.Contains("bool", e.Message);
        e = Assert.Throws<ArgumentException>(() => SequenceLogProbs.Compute(logits, labels.masked_fill(labels.eq(labels[0, 1]), 7)));
        Assert.Contains("outside [0, 5)", e.Message);
        var noAnswer = tensor(new[] { false, true, true, true, false, false, false, false }, [2, 4]);
        e = Assert.Throws<ArgumentException>(() => SequenceLogProbs.Compute(logits, labels, noAnswer));
        Assert.Contains("Sequence 1 has no counted token", e.Message);
        e = Assert.Throws<ArgumentException>(() => SequenceLogProbs.Compute(logits[.., ..1], labels[.., ..1]));
        Assert.Contains("at least 2 tokens", e.Message);
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void LeavesNoTensorsBehind(CrossEntropyBackend backend)
    {
        var labels = PreferenceGolden.Labels();
        var mask = PreferenceGolden.CompletionMask();
        var logits = PreferenceGolden.PolicyLogits(ScalarType.Float32);
        LeakCheck.AssertNoGrowth(() =>
        {
            using var scope = NewDisposeScope();
            var logps = SequenceLogProbs.Compute(logits, labels, mask, backend: backend);
            logps.Mean.sum().backward();
            logits.grad!.zero_();
        }, iterations: 20);
    }
}
