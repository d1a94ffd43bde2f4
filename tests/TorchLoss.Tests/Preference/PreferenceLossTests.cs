using TorchSharp;
using static TorchLoss.Tests.TestTensors;
using static TorchSharp.torch;

namespace TorchLoss.Tests.Preference;

/// <summary><see cref="PreferenceLoss"/> against float64 PyTorch evaluations of the published definitions, and its conventions and checks.</summary>
public class PreferenceLossTests
{
    public static TheoryData<int, CrossEntropyBackend> GoldenCases()
    {
        var data = new TheoryData<int, CrossEntropyBackend>();
        for (int i = 0; i < PreferenceGolden.CaseCount; i++)
            foreach (var backend in new[] { CrossEntropyBackend.Fused, CrossEntropyBackend.LibTorch })
                data.Add(i, backend);
        return data;
    }

    private static PreferenceReference Reference(PreferenceOptions options) =>
        PreferenceReference.FromLogits(PreferenceGolden.ReferenceLogits(), PreferenceGolden.Labels(), PreferenceGolden.CompletionMask(), backend: options.Backend);

    [Theory]
    [MemberData(nameof(GoldenCases))]
    public void MatchesThePublishedDefinitionInFloat64(int index, CrossEntropyBackend backend)
    {
        using var scope = NewDisposeScope();
        var c = PreferenceGolden.Case(index);
        var options = PreferenceGolden.Options(c, backend);
        using var loss = new PreferenceLoss(options);
        var logits = PreferenceGolden.PolicyLogits();
        using var reference = options.NeedsReference ? Reference(options) : null;
        using var result = loss.Compute(logits, PreferenceGolden.Labels(), PreferenceGolden.CompletionMask(), reference);

        string what = PreferenceGolden.Describe(c);
        Assert.Equal(c.GetProperty("mean_loss").GetDouble(), result.Loss.item<double>(), 12);
        AssertClose(tensor(PreferenceGolden.Doubles(c.GetProperty("pair_losses"))), result.PairLosses, 1e-12, $"pair losses {what}");
        AssertClose(tensor(PreferenceGolden.Doubles(c.GetProperty("chosen_rewards"))), result.ChosenRewards, 1e-12, $"chosen rewards {what}");
        AssertClose(tensor(PreferenceGolden.Doubles(c.GetProperty("rejected_rewards"))), result.RejectedRewards, 1e-12, $"rejected rewards {what}");
        result.Loss.backward();
        AssertClose(tensor(PreferenceGolden.Doubles(c.GetProperty("gradient"))).reshape(logits.shape), logits.grad!, 1e-12, $"gradient {what}");
    }

    [Theory]
    [InlineData(0)]
    [InlineData(6)]
    [InlineData(11)]
    [InlineData(13)]
    public void SeparateBatchesEqualTheConcatenatedOne(int index)
    {
        using var scope = NewDisposeScope();
        var c = PreferenceGolden.Case(index);
        var options = PreferenceGolden.Options(c);
        using var loss = new PreferenceLoss(options);
        var logits = PreferenceGolden.PolicyLogits();
        var labels = PreferenceGolden.Labels();
        var mask = PreferenceGolden.CompletionMask();
        var r = PreferenceGolden.ReferenceLogits();
        using var reference = options.NeedsReference ? PreferenceReference.FromLogits(r[..3], labels[..3], r[3..], labels[3..], mask[..3], mask[3..]) : null;
        using var result = loss.Compute(logits[..3], labels[..3], logits[3..], labels[3..], mask[..3], mask[3..], reference);
        Assert.Equal(c.GetProperty("mean_loss").GetDouble(), result.Loss.item<double>(), 12);
    }

    [Fact]
    public void Float32FusedMatchesComposed()
    {
        using var scope = NewDisposeScope();
        foreach (var c in PreferenceGolden.Cases)
        {
            var grads = new List<Tensor>();
            var values = new List<double>();
            foreach (var backend in new[] { CrossEntropyBackend.Fused, CrossEntropyBackend.LibTorch })
            {
                var options = PreferenceGolden.Options(c, backend);
                using var loss = new PreferenceLoss(options);
                var logits = PreferenceGolden.PolicyLogits(ScalarType.Float32);
                using var reference = options.NeedsReference
                    ? PreferenceReference.FromLogits(PreferenceGolden.ReferenceLogits(ScalarType.Float32), PreferenceGolden.Labels(), PreferenceGolden.CompletionMask(), backend: backend)
                    : null;
                using var result = loss.Compute(logits, PreferenceGolden.Labels(), PreferenceGolden.CompletionMask(), reference);
                Assert.Equal(ScalarType.Float32, result.Loss.dtype);
                result.Loss.backward();
                values.Add(result.Loss.item<float>());
                grads.Add(logits.grad!);
            }
            Assert.True(Math.Abs(values[0] - values[1]) <= 1e-5 * (1 + Math.Abs(values[1])), $"{PreferenceGolden.Describe(c)}: {values[0]} vs {values[1]}");
            AssertClose(grads[1], grads[0], 1e-5, $"gradient {PreferenceGolden.Describe(c)}");
            // and both are close to the float64 truth
            Assert.True(Math.Abs(values[0] - c.GetProperty("mean_loss").GetDouble()) <= 1e-5 * (1 + Math.Abs(values[0])));
        }
    }

    [Theory]
    [InlineData(PreferenceLossKind.Dpo, 0.0, false)]
    [InlineData(PreferenceLossKind.Dpo, 0.0, true)]
    [InlineData(PreferenceLossKind.Dpo, 0.25, false)]
    [InlineData(PreferenceLossKind.RobustDpo, 0.3, false)]
    public void IdenticalPolicyAndReferenceGiveLogTwo(PreferenceLossKind kind, double smoothing, bool mean)
    {
        using var scope = NewDisposeScope();
        using var loss = new PreferenceLoss(new PreferenceOptions { Loss = kind, LabelSmoothing = smoothing, Score = mean ? SequenceScore.Mean : null });
        var logits = PreferenceGolden.PolicyLogits();
        using var reference = PreferenceReference.FromLogits(logits.detach(), PreferenceGolden.Labels(), PreferenceGolden.CompletionMask());
        using var result = loss.Compute(logits, PreferenceGolden.Labels(), PreferenceGolden.CompletionMask(), reference);
        // Robust DPO at h = 0: ((1−ε) log 2 − ε log 2)/(1 − 2ε) = log 2 as well.
        Assert.Equal(Math.Log(2), result.Loss.item<double>(), 14);
        Assert.Equal(0, result.RewardMargin.item<double>(), 14);
        Assert.Equal(0, result.RewardAccuracy.item<double>(), 14); // ties are not correct
    }

    [Fact]
    public void PairsFarApartStayFinite()
    {
        using var scope = NewDisposeScope();
        using var dpo = new PreferenceLoss(new PreferenceOptions { Beta = 1 });
        var chosen = SequenceLogProbs.FromValues(tensor(new[] { -1.0, -2000.0 }), tensor(new[] { 1L, 1 }));
        var rejected = SequenceLogProbs.FromValues(tensor(new[] { -2000.0, -1.0 }), tensor(new[] { 1L, 1 }));
        var sum = tensor(new[] { -1.0, -2000.0 }).requires_grad_(true);
        using var policyChosen = new SequenceLogProbsProbe(sum).Value;
        using var reference = PreferenceReference.FromValues(tensor(new[] { -5.0, -5.0 }), tensor(new[] { 1L, 1 }), tensor(new[] { -5.0, -5.0 }), tensor(new[] { 1L, 1 }));
        using var result = dpo.Compute(policyChosen, rejected, reference);
        double[] pairs = Values(result.PairLosses);
        Assert.Equal(0, pairs[0], 12);           // −log σ(1999) underflows to 0, not NaN
        Assert.Equal(1999, pairs[1], 9);         // −log σ(−1999) = 1999 + log(1 + e^−1999)
        result.Loss.backward();
        Assert.True(Values(sum.grad!).All(double.IsFinite));
        Assert.Equal(0.5, result.RewardAccuracy.item<double>(), 14);
        chosen.Dispose();
    }

    /// <summary>Differentiable per-sequence sums from a leaf, with one token each, for tests on the formulas alone.</summary>
    private sealed class SequenceLogProbsProbe(Tensor sum)
    {
        public SequenceLogProbs Value { get; } = new(sum, ones(sum.shape, ScalarType.Int64));
    }

    [Fact]
    public void OrpoIsStableNearProbabilityOne()
    {
        using var scope = NewDisposeScope();
        using var orpo = new PreferenceLoss(new PreferenceOptions { Loss = PreferenceLossKind.Orpo, Lambda = 1 });
        var m = tensor(new[] { -1e-9, -40.0 }).requires_grad_(true);
        using var chosen = new SequenceLogProbsProbe(m).Value;
        using var rejected = SequenceLogProbs.FromValues(tensor(new[] { -3.0, -1e-12 }), tensor(new[] { 1L, 1 }));
        using var result = orpo.Compute(chosen, rejected);
        // log odds(m) = m − log(1 − e^m): for m = −1e-9 it is about −1e-9 − log(1e-9); log1p(−exp(m)) alone loses ~7 digits there.
        double expm1(double x) => Math.Abs(x) < 1e-5 ? x + x * x / 2 + x * x * x / 6 : Math.Exp(x) - 1;
        double lo(double x) => x - Math.Log(-expm1(x));
        double expected0 = 1e-9 + Math.Log(1 + Math.Exp(-(lo(-1e-9) - lo(-3.0))));
        Assert.Equal(expected0, Values(result.PairLosses)[0], 10);
        result.Loss.backward();
        Assert.True(Values(m.grad!).All(double.IsFinite));
    }

    [Fact]
    public void NormalizerMakesAccumulatedGradientsEqualTheFullBatch()
    {
        using var scope = NewDisposeScope();
        using var loss = new PreferenceLoss(new PreferenceOptions { LabelSmoothing = 0.1 });
        var labels = PreferenceGolden.Labels();
        var mask = PreferenceGolden.CompletionMask();
        var r = PreferenceGolden.ReferenceLogits();
        var full = PreferenceGolden.PolicyLogits();
        using (var reference = PreferenceReference.FromLogits(r, labels, mask))
            loss.Compute(full, labels, mask, reference).Loss.backward();

        var leaf = PreferenceGolden.PolicyLogits();
        // micro-batch 1: pairs 0 and 1; micro-batch 2: pair 2. Rows b (chosen) and 3 + b (rejected).
        foreach (long[] pairs in new[] { new long[] { 0, 1 }, new long[] { 2 } })
        {
            var rows = tensor(pairs.Concat(pairs.Select(p => p + 3)).ToArray());
            using var reference = PreferenceReference.FromLogits(r.index_select(0, rows), labels.index_select(0, rows), mask.index_select(0, rows));
            loss.Compute(leaf.index_select(0, rows), labels.index_select(0, rows), mask.index_select(0, rows), reference, normalizer: 3).Loss.backward();
        }
        AssertClose(full.grad!, leaf.grad!, 1e-13, "accumulated gradient");
    }

    [Fact]
    public void ReductionsAndLoggedNumbers()
    {
        using var scope = NewDisposeScope();
        var c = PreferenceGolden.Case(0);
        double[] pairs = PreferenceGolden.Doubles(c.GetProperty("pair_losses"));
        double[] chosenRewards = PreferenceGolden.Doubles(c.GetProperty("chosen_rewards"));
        double[] rejectedRewards = PreferenceGolden.Doubles(c.GetProperty("rejected_rewards"));
        foreach (var reduction in new[] { nn.Reduction.None, nn.Reduction.Sum })
        {
            var options = PreferenceGolden.Options(c) with { Reduction = reduction };
            using var loss = new PreferenceLoss(options);
            using var reference = Reference(options);
            using var result = loss.Compute(PreferenceGolden.PolicyLogits(), PreferenceGolden.Labels(), PreferenceGolden.CompletionMask(), reference);
            if (reduction == nn.Reduction.None) AssertClose(tensor(pairs), result.Loss, 1e-12);
            else Assert.Equal(pairs.Sum(), result.Loss.item<double>(), 12);
            double accuracy = chosenRewards.Zip(rejectedRewards).Count(p => p.First > p.Second) / 3.0;
            Assert.Equal(accuracy, result.RewardAccuracy.item<double>(), 14);
            Assert.Equal(chosenRewards.Zip(rejectedRewards).Average(p => p.First - p.Second), result.RewardMargin.item<double>(), 12);
            Assert.Equal(3, result.PairCount.item<long>());
            var sequence = PreferenceGolden.Sequence;
            AssertClose(tensor(PreferenceGolden.Doubles(sequence.GetProperty("sum"))[..3]), result.ChosenLogProbs, 1e-13);
            AssertClose(tensor(PreferenceGolden.Doubles(sequence.GetProperty("sum"))[3..]), result.RejectedLogProbs, 1e-13);
            AssertClose(tensor(PreferenceGolden.Doubles(sequence.GetProperty("mean"))[..3]).neg(), result.ChosenNll, 1e-13);
            Assert.False(result.PairLosses.requires_grad);
        }
    }

    [Fact]
    public void InvalidOptionsAreRejectedAtConstruction()
    {
        void Rejects(PreferenceOptions options, string text) => Assert.Contains(text, Assert.Throws<ArgumentException>(() => new PreferenceLoss(options)).Message);
        Rejects(new PreferenceOptions { Beta = 0 }, "Beta");
        Rejects(new PreferenceOptions { Beta = -1 }, "Beta");
        Rejects(new PreferenceOptions { Beta = double.NaN }, "Beta");
        Rejects(new PreferenceOptions { LabelSmoothing = 0.6 }, "[0, 0.5]");
        Rejects(new PreferenceOptions { Loss = PreferenceLossKind.RobustDpo, LabelSmoothing = 0.5 }, "1 − 2ε");
        Rejects(new PreferenceOptions { Loss = PreferenceLossKind.Ipo, LabelSmoothing = 0.1 }, "Dpo and RobustDpo only");
        Rejects(new PreferenceOptions { Gamma = 0.5 }, "SimPo only");
        Rejects(new PreferenceOptions { Loss = PreferenceLossKind.SimPo, Gamma = -1 }, "Gamma");
        Rejects(new PreferenceOptions { Loss = PreferenceLossKind.Orpo, Lambda = 0 }, "Lambda");
        Rejects(new PreferenceOptions { Loss = PreferenceLossKind.SimPo, Lambda = 0.1 }, "Orpo only");
        Rejects(new PreferenceOptions { Loss = PreferenceLossKind.Orpo, Score = SequenceScore.Sum }, "mean");
        Rejects(new PreferenceOptions { Loss = (PreferenceLossKind)42 }, "Unknown");
    }

    [Fact]
    public void BadInputsGiveClearArgumentExceptions()
    {
        using var scope = NewDisposeScope();
        using var dpo = new PreferenceLoss();
        using var simpo = new PreferenceLoss(new PreferenceOptions { Loss = PreferenceLossKind.SimPo });
        var logits = PreferenceGolden.PolicyLogits();
        var labels = PreferenceGolden.Labels();
        var mask = PreferenceGolden.CompletionMask();
        using var reference = PreferenceReference.FromLogits(PreferenceGolden.ReferenceLogits(), labels, mask);

        string Message(Action a) => Assert.Throws<ArgumentException>(a).Message;
        Assert.Contains("reference model", Message(() => dpo.Compute(logits, labels, mask)));
        Assert.Contains("reference-free", Message(() => simpo.Compute(logits, labels, mask, reference)));
        Assert.Contains("even number of rows", Message(() => simpo.Compute(logits[..5], labels[..5], mask[..5])));
        Assert.Contains("completionMask", Message(() => dpo.Compute(logits, labels, mask[.., ..4], reference)));
        Assert.Contains("3 chosen but 2 rejected", Message(() => simpo.Compute(logits[..3], labels[..3], logits[3..5], labels[3..5])));
        var noAnswer = mask.clone();
        noAnswer[4] = zeros(mask.shape[1], ScalarType.Bool);
        Assert.Contains("Sequence 4 has no counted token", Message(() => dpo.Compute(logits, labels, noAnswer, reference)));
        // a reference of other sequences: its token counts differ
        using var shuffled = PreferenceReference.FromLogits(PreferenceGolden.ReferenceLogits().flip(0), labels.flip(0), mask.flip(0));
        Assert.Contains("counted tokens", Message(() => dpo.Compute(logits, labels, mask, shuffled)));
        Assert.Contains("positive number of pairs", Message(() => dpo.Compute(logits, labels, mask, reference, normalizer: 0)));
        using var perPair = new PreferenceLoss(new PreferenceOptions { Reduction = nn.Reduction.None });
        Assert.Contains("Reduction.None", Message(() => perPair.Compute(logits, labels, mask, reference, normalizer: 3)));
    }

    [Fact]
    public void LeavesNoTensorsBehind()
    {
        var labels = PreferenceGolden.Labels();
        var mask = PreferenceGolden.CompletionMask();
        var logits = PreferenceGolden.PolicyLogits(ScalarType.Float32);
        var referenceLogits = PreferenceGolden.ReferenceLogits(ScalarType.Float32);
        using var loss = new PreferenceLoss(new PreferenceOptions { Loss = PreferenceLossKind.RobustDpo, LabelSmoothing = 0.1 });
        using var orpo = new PreferenceLoss(new PreferenceOptions { Loss = PreferenceLossKind.Orpo });
        LeakCheck.AssertNoGrowth(() =>
        {
            using var scope = NewDisposeScope();
            using var reference = PreferenceReference.FromLogits(referenceLogits, labels, mask);
            using (var result = loss.Compute(logits, labels, mask, reference)) result.Loss.backward();
            orpo.forward(logits, labels).backward();
            logits.grad!.zero_();
        }, iterations: 20);
    }
}
