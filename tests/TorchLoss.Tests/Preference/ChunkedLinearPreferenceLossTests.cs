using TorchSharp;
using static TorchLoss.Tests.TestTensors;
using static TorchSharp.torch;

namespace TorchLoss.Tests.Preference;

/// <summary>
/// <see cref="ChunkedLinearPreferenceLoss"/> against the composed path: logits = hidden·weightᵀ + bias, then
/// <see cref="PreferenceLoss.Compute(Tensor, Tensor, Tensor?, PreferenceReference?, long?)"/>; loss, every metric and the
/// gradients of hidden, weight and bias.
/// </summary>
public class ChunkedLinearPreferenceLossTests
{
    private const long Pairs = 3;
    private const long Length = 7;
    private const long Width = 5;
    private const long Classes = 13;

    /// <summary>Float32 against the composed float32 path: relative to 1 + |value| (sums of 7 log-probs and V = 13 softmaxes).</summary>
    private const double Float32Tolerance = 2e-5;

    /// <summary>Every loss kind and the options that change its gradient.</summary>
    public static TheoryData<string> Kinds() => new(OptionSets.Keys);

    private static readonly Dictionary<string, PreferenceOptions> OptionSets = new()
    {
        ["dpo"] = new() { Loss = PreferenceLossKind.Dpo, Beta = 0.5 },
        ["dpo smoothed"] = new() { Loss = PreferenceLossKind.Dpo, Beta = 0.5, LabelSmoothing = 0.2 },
        ["dpo mean"] = new() { Loss = PreferenceLossKind.Dpo, Beta = 2, Score = SequenceScore.Mean },
        ["dpo sum-reduced"] = new() { Loss = PreferenceLossKind.Dpo, Beta = 0.3, Reduction = nn.Reduction.Sum },
        ["hinge"] = new() { Loss = PreferenceLossKind.Hinge, Beta = 0.2 },
        ["ipo"] = new() { Loss = PreferenceLossKind.Ipo, Beta = 0.4 },
        ["robust"] = new() { Loss = PreferenceLossKind.RobustDpo, Beta = 0.5, LabelSmoothing = 0.1 },
        ["simpo"] = new() { Loss = PreferenceLossKind.SimPo, Beta = 2, Gamma = 0.5 },
        ["simpo nll"] = new() { Loss = PreferenceLossKind.SimPo, Beta = 2, Gamma = 0.3, Alpha = 0.7 },
        ["orpo"] = new() { Loss = PreferenceLossKind.Orpo, Beta = 0.1, Lambda = 0.4 },
        ["orpo per pair"] = new() { Loss = PreferenceLossKind.Orpo, Lambda = 0.2, Reduction = nn.Reduction.None },
        ["dpo per pair"] = new() { Loss = PreferenceLossKind.Dpo, Beta = 0.5, Reduction = nn.Reduction.None },
    };

    /// <summary>Seeded inputs: hidden [2P, T, d], weight [V, d], bias [V] (leaves), labels, masks and reference logits.</summary>
    private sealed record Inputs(Tensor Hidden, Tensor Weight, Tensor Bias, Tensor Labels, Tensor Mask, Tensor ReferenceLogits);

    private enum Padding { Right, Left, OneToken }

    private static Inputs MakeInputs(ScalarType dtype, Padding padding, long seed = 3)
    {
        var gen = new Generator((ulong)seed);
        var hidden = randn([2 * Pairs, Length, Width], ScalarType.Float64, generator: gen).to(dtype).requires_grad_(true);
        var weight = randn([Classes, Width], ScalarType.Float64, generator: gen).to(dtype).requires_grad_(true);
        var bias = (0.5 * randn([Classes], ScalarType.Float64, generator: gen)).to(dtype).requires_grad_(true);
        var labels = randint(0, Classes, [2 * Pairs, Length], generator: gen);
        // Prompts of 2 tokens, answers of different lengths per row, the rest padding (ignored labels).
        var mask = zeros([2 * Pairs, Length], ScalarType.Bool);
        for (long row = 0; row < 2 * Pairs; row++)
        {
            long answer = padding == Padding.OneToken ? 1 : 1 + row % 4;
            long pad = Length - 2 - answer;
            long start = padding == Padding.Left ? pad + 2 : 2;
            mask[row, TensorIndex.Slice(start, start + answer)] = true;
            long padFrom = padding == Padding.Left ? 0 : start + answer;
            labels[row, TensorIndex.Slice(padFrom, padFrom + pad)] = LossDefaults.IgnoreIndex;
        }
        var referenceLogits = randn([2 * Pairs, Length, Classes], ScalarType.Float64, generator: gen).to(dtype);
        return new Inputs(hidden, weight, bias, labels, mask, referenceLogits);
    }

    private static void ResetGradients(Inputs x)
    {
        x.Hidden.grad = null;
        x.Weight.grad = null;
        x.Bias.grad = null;
    }

    /// <summary>Σ loss·u for a seeded u: the identity for a reduced loss, a general incoming gradient for per-pair losses.</summary>
    private static Tensor Backpropagated(Tensor loss) =>
        loss.dim() == 0 ? loss : (loss * rand(loss.shape, ScalarType.Float64, generator: new Generator(11)).to(loss.dtype)).sum();

    private static void AssertSameAsComposed(PreferenceOptions options, ScalarType dtype, Padding padding, double tolerance, int? chunkPairs, long? normalizer = null, double lossFactor = 1)
    {
        using var scope = NewDisposeScope();
        var x = MakeInputs(dtype, padding);
        using var reference = options.NeedsReference ? PreferenceReference.FromLogits(x.ReferenceLogits, x.Labels, x.Mask) : null;

        using var composed = new PreferenceLoss(options);
        using var expected = composed.Compute(nn.functional.linear(x.Hidden, x.Weight, x.Bias), x.Labels, x.Mask, reference, normalizer);
        (lossFactor * Backpropagated(expected.Loss)).backward();
        var (gh, gw, gb) = (x.Hidden.grad!.clone(), x.Weight.grad!.clone(), x.Bias.grad!.clone());
        ResetGradients(x);

        using var fused = new ChunkedLinearPreferenceLoss(options, chunkPairs, gradientFilter: 0);
        using var actual = fused.Compute(x.Hidden, x.Weight, x.Labels, x.Mask, reference, normalizer, x.Bias);
        Assert.Equal(expected.Loss.dtype, actual.Loss.dtype);
        string what = $"{options.Loss} {padding} {dtype}";
        AssertClose(expected.Loss, actual.Loss, tolerance, $"loss {what}");
        AssertClose(expected.PairLosses, actual.PairLosses, tolerance, $"pair losses {what}");
        AssertClose(expected.ChosenRewards, actual.ChosenRewards, tolerance, $"chosen rewards {what}");
        AssertClose(expected.RejectedRewards, actual.RejectedRewards, tolerance, $"rejected rewards {what}");
        AssertClose(expected.ChosenLogProbs, actual.ChosenLogProbs, tolerance, $"chosen log-probs {what}");
        AssertClose(expected.RejectedLogProbs, actual.RejectedLogProbs, tolerance, $"rejected log-probs {what}");
        AssertClose(expected.ChosenNll, actual.ChosenNll, tolerance, $"chosen NLL {what}");
        AssertClose(expected.RewardMargin, actual.RewardMargin, tolerance, $"reward margin {what}");
        Assert.Equal(Scalar(expected.RewardAccuracy), Scalar(actual.RewardAccuracy));
        Assert.False(actual.PairLosses.requires_grad);
        (lossFactor * Backpropagated(actual.Loss)).backward();
        // A reduced loss gets the gradients built in forward (one sweep); per-pair losses need a second sweep.
        Assert.Equal(options.Reduction == nn.Reduction.None, TorchLoss.Kernels.ChunkedLinearSequenceLogProbFunction.LastBackwardSwept);
        AssertClose(gh, x.Hidden.grad!, tolerance, $"hidden gradient {what}");
        AssertClose(gw, x.Weight.grad!, tolerance, $"weight gradient {what}");
        AssertClose(gb, x.Bias.grad!, tolerance, $"bias gradient {what}");
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void EqualsTheComposedPathInFloat64(string kind)
    {
        foreach (var padding in Enum.GetValues<Padding>())
            foreach (int? chunkPairs in new int?[] { null, 1, 2 })
                AssertSameAsComposed(OptionSets[kind], ScalarType.Float64, padding, 1e-12, chunkPairs);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void EqualsTheComposedPathInFloat32(string kind)
    {
        foreach (var padding in Enum.GetValues<Padding>())
            AssertSameAsComposed(OptionSets[kind], ScalarType.Float32, padding, Float32Tolerance, chunkPairs: 2);
    }

    [Fact]
    public void NormalizerAndAScaledLossGiveTheComposedGradients()
    {
        // A normaliser over pairs, and loss·3 (backward then scales the gradients built in forward).
        AssertSameAsComposed(OptionSets["dpo"], ScalarType.Float64, Padding.Right, 1e-12, chunkPairs: 1, normalizer: 8);
        AssertSameAsComposed(OptionSets["simpo nll"], ScalarType.Float64, Padding.Left, 1e-12, chunkPairs: 2, lossFactor: 3);
    }

    [Fact]
    public void AFunctionOfTheLossScalesTheGradientsBuiltInForward()
    {
        // loss + loss² plus a term on the weight alone: the incoming gradient is (1 + 2·loss) times the anticipated one.
        using var scope = NewDisposeScope();
        var options = OptionSets["dpo"];
        var x = MakeInputs(ScalarType.Float64, Padding.Right);
        using var reference = PreferenceReference.FromLogits(x.ReferenceLogits, x.Labels, x.Mask);
        using var composed = new PreferenceLoss(options);
        var logits = nn.functional.linear(x.Hidden, x.Weight, x.Bias);
        using var expected = composed.Compute(logits, x.Labels, x.Mask, reference);
        (expected.Loss + 0.25 * x.Weight.square().sum() + expected.Loss.square()).backward();
        var (gh, gw) = (x.Hidden.grad!.clone(), x.Weight.grad!.clone());
        ResetGradients(x);

        using var fused = new ChunkedLinearPreferenceLoss(options, gradientFilter: 0);
        using var actual = fused.Compute(x.Hidden, x.Weight, x.Labels, x.Mask, reference, bias: x.Bias);
        (actual.Loss + 0.25 * x.Weight.square().sum() + actual.Loss.square()).backward();
        Assert.False(TorchLoss.Kernels.ChunkedLinearSequenceLogProbFunction.LastBackwardSwept);
        AssertClose(gh, x.Hidden.grad!, 1e-12, "hidden gradient");
        AssertClose(gw, x.Weight.grad!, 1e-12, "weight gradient");
    }

    [Fact]
    public void DefaultGradientFilterStaysCloseOnARandomHead()
    {
        using var scope = NewDisposeScope();
        var options = OptionSets["simpo"];
        var x = MakeInputs(ScalarType.Float32, Padding.Right);
        using var composed = new PreferenceLoss(options);
        using var expected = composed.Compute(nn.functional.linear(x.Hidden, x.Weight), x.Labels, x.Mask);
        expected.Loss.backward();
        var gw = x.Weight.grad!.clone();
        ResetGradients(x);
        using var fused = new ChunkedLinearPreferenceLoss(options);
        using var actual = fused.Compute(x.Hidden, x.Weight, x.Labels, x.Mask);
        actual.Loss.backward();
        AssertClose(gw, x.Weight.grad!, 1e-4, "weight gradient with the default filter");
        Assert.Null(x.Bias.grad);
    }

    [Fact]
    public void WithoutGradientsOnlyTheLossIsComputed()
    {
        using var scope = NewDisposeScope();
        var x = MakeInputs(ScalarType.Float64, Padding.Right);
        using var fused = new ChunkedLinearPreferenceLoss(OptionSets["orpo"]);
        using var composed = new PreferenceLoss(OptionSets["orpo"]);
        using var expected = composed.Compute(nn.functional.linear(x.Hidden, x.Weight), x.Labels, x.Mask);
        using (no_grad())
        {
            using var actual = fused.Compute(x.Hidden, x.Weight, x.Labels, x.Mask);
            Assert.False(actual.Loss.requires_grad);
            AssertClose(expected.Loss, actual.Loss, 1e-12, "loss under no_grad");
        }
        Assert.Equal(Scalar(expected.Loss), Scalar(fused.forward(x.Hidden, x.Weight, x.Labels.masked_fill(x.Mask.logical_not(), LossDefaults.IgnoreIndex))), 12);
    }

    [Fact]
    public void BadInputsGiveClearErrors()
    {
        using var scope = NewDisposeScope();
        var x = MakeInputs(ScalarType.Float32, Padding.Right);
        using var simpo = new ChunkedLinearPreferenceLoss(OptionSets["simpo"]);
        using var dpo = new ChunkedLinearPreferenceLoss(OptionSets["dpo"]);
        var odd = Assert.Throws<ArgumentException>(() => simpo.Compute(x.Hidden[..5], x.Weight, x.Labels[..5], x.Mask[..5]));
        Assert.Contains("even number of rows", odd.Message);
        var width = Assert.Throws<ArgumentException>(() => simpo.Compute(x.Hidden, x.Weight[.., ..3], x.Labels, x.Mask));
        Assert.Contains("weight must be [V, d]", width.Message);
        var flat = Assert.Throws<ArgumentException>(() => simpo.Compute(x.Hidden.reshape(-1, Width), x.Weight, x.Labels.reshape(-1), null));
        Assert.Contains("hidden", flat.Message);
        var mask = Assert.Throws<ArgumentException>(() => simpo.Compute(x.Hidden, x.Weight, x.Labels, x.Mask[.., ..4]));
        Assert.Contains("completionMask", mask.Message);
        var empty = x.Mask.clone();
        empty[4] = false;
        var none = Assert.Throws<ArgumentException>(() => simpo.Compute(x.Hidden, x.Weight, x.Labels, empty));
        Assert.Contains("Sequence 4 has no counted token", none.Message);
        var label = Assert.Throws<ArgumentException>(() => simpo.Compute(x.Hidden, x.Weight, x.Labels.clamp_min(0) + Classes, x.Mask));
        Assert.Contains("labels", label.ParamName);
        Assert.Contains("reference", Assert.Throws<ArgumentException>(() => dpo.Compute(x.Hidden, x.Weight, x.Labels, x.Mask)).Message);
        using var reference = PreferenceReference.FromLogits(x.ReferenceLogits, x.Labels, x.Mask);
        Assert.Contains("reference-free", Assert.Throws<ArgumentException>(() => simpo.Compute(x.Hidden, x.Weight, x.Labels, x.Mask, reference)).Message);
        Assert.Contains("counted tokens", Assert.Throws<ArgumentException>(() => dpo.Compute(x.Hidden, x.Weight, x.Labels, x.Mask.roll(1, 0), reference)).Message);
        Assert.Contains("normalizer", Assert.Throws<ArgumentException>(() => simpo.Compute(x.Hidden, x.Weight, x.Labels, x.Mask, normalizer: 0)).Message);
        Assert.Contains("bias", Assert.Throws<ArgumentException>(() => simpo.Compute(x.Hidden, x.Weight, x.Labels, x.Mask, bias: x.Bias[..4])).Message);
        Assert.Throws<ArgumentException>(() => new ChunkedLinearPreferenceLoss(OptionSets["simpo"], chunkPairs: 0));
        Assert.Throws<ArgumentException>(() => new ChunkedLinearPreferenceLoss(OptionSets["simpo"], gradientFilter: 1));
        Assert.Throws<ArgumentException>(() => new ChunkedLinearPreferenceLoss(new PreferenceOptions { Beta = 0 }));
    }

    [Fact]
    public void RepeatedStepsLeakNoTensors()
    {
        var x = MakeInputs(ScalarType.Float32, Padding.Left);
        using var reference = PreferenceReference.FromLogits(x.ReferenceLogits, x.Labels, x.Mask);
        using var dpo = new ChunkedLinearPreferenceLoss(OptionSets["dpo"], chunkPairs: 2);
        using var perPair = new ChunkedLinearPreferenceLoss(OptionSets["orpo per pair"], chunkPairs: 1);
        LeakCheck.AssertNoGrowth(() =>
        {
            using var scope = NewDisposeScope();
            ResetGradients(x);
            using (var result = dpo.Compute(x.Hidden, x.Weight, x.Labels, x.Mask, reference, bias: x.Bias)) result.Loss.backward();
            using (var result = perPair.Compute(x.Hidden, x.Weight, x.Labels, x.Mask)) result.Loss.sum().backward();
            using (no_grad()) dpo.Compute(x.Hidden, x.Weight, x.Labels, x.Mask, reference).Dispose();
        }, iterations: 20);
        ResetGradients(x);
    }
}
