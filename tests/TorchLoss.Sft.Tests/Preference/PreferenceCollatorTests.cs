using TorchLoss.Sft;
using TorchSharp;
using static TorchLoss.Sft.Tests.SftTestKit;
using static TorchSharp.torch;

namespace TorchLoss.Sft.Tests.Preference;

public class PreferenceCollatorTests
{
    private static readonly PreferencePairBuilder Pairs = new(Chars, ChatTemplate.Plain, new PreferencePairOptions { MaxLength = 256 });

    internal static List<PreferencePair> SomePairs() =>
    [
        Pairs.Build([U("2+2?")], "4", "five"),
        Pairs.Build([S("Be kind."), U("hello there")], "hi, how can I help?", "go away"),
        Pairs.Build([U("a"), A("b"), U("c")], "d", "e f g"),
    ];

    /// <summary>A stand-in causal model in float64: each position's logits are a fixed function of the tokens up to it.</summary>
    internal static Tensor CausalModel(Tensor inputIds, Tensor weights) =>
        weights.index_select(0, inputIds.reshape(-1)).reshape(inputIds.shape[0], inputIds.shape[1], -1).cumsum(1);

    [Fact]
    public void RightPaddingPutsChosenRowsFirstAndMasksTheAnswers()
    {
        var pairs = SomePairs();
        using var batch = new PreferenceCollator(padTokenId: 0).Collate(pairs);
        int length = pairs.Max(p => Math.Max(p.Chosen.Length, p.Rejected.Length));
        Assert.Equal([6L, length], batch.InputIds.shape);
        Assert.Equal(3, batch.PairCount);
        var sides = pairs.Select(p => p.Chosen).Concat(pairs.Select(p => p.Rejected)).ToList();
        for (int row = 0; row < sides.Count; row++)
        {
            var side = sides[row];
            Assert.Equal(side.InputIds.Select(i => (long)i), batch.InputIds[row, ..side.Length].data<long>().ToArray());
            Assert.Equal(side.Labels, batch.Labels[row, ..side.Length].data<long>().ToArray());
            Assert.Equal(side.Labels.Select(l => l != SftExample.IgnoreIndex), batch.CompletionMask[row, ..side.Length].data<bool>().ToArray());
            Assert.Equal(side.TrainedTokenCount, batch.CompletionMask[row].sum().item<long>());
            Assert.Equal(side.Length, batch.AttentionMask[row].sum().item<long>());
            Assert.Equal(Enumerable.Range(0, side.Length).Select(i => (long)i), batch.PositionIds[row, ..side.Length].data<long>().ToArray());
            Assert.All(batch.InputIds[row, side.Length..].data<long>().ToArray(), id => Assert.Equal(0L, id));
        }
    }

    [Fact]
    public void LeftPaddingPutsEveryRowAtTheEndWithItsOwnPositions()
    {
        var pairs = SomePairs();
        using var right = new PreferenceCollator(padTokenId: 7).Collate(pairs);
        using var left = new PreferenceCollator(padTokenId: 7, PaddingSide.Left, padToMultipleOf: 8).Collate(pairs);
        long length = left.InputIds.shape[1];
        Assert.Equal(0, length % 8);
        var sides = pairs.Select(p => p.Chosen).Concat(pairs.Select(p => p.Rejected)).ToList();
        for (int row = 0; row < sides.Count; row++)
        {
            var side = sides[row];
            int pad = (int)length - side.Length;
            Assert.Equal(side.InputIds.Select(i => (long)i), left.InputIds[row, pad..].data<long>().ToArray());
            Assert.Equal(side.Labels, left.Labels[row, pad..].data<long>().ToArray());
            Assert.All(left.InputIds[row, ..pad].data<long>().ToArray(), id => Assert.Equal(7L, id));
            Assert.All(left.Labels[row, ..pad].data<long>().ToArray(), l => Assert.Equal(SftExample.IgnoreIndex, l));
            Assert.False(left.AttentionMask[row, ..pad].any().item<bool>());
            Assert.False(left.CompletionMask[row, ..pad].any().item<bool>());
            Assert.True(left.AttentionMask[row, pad..].all().item<bool>());
            Assert.Equal(Enumerable.Range(0, side.Length).Select(i => (long)i), left.PositionIds[row, pad..].data<long>().ToArray());
        }
        // The same tokens are scored: equal counts and, for a model that sees only real tokens, equal log-probabilities.
        using var weights = randn(Chars.VocabularySize, Chars.VocabularySize, dtype: ScalarType.Float64, generator: new Generator(3));
        using var rightLogits = CausalModel(right.InputIds, weights);
        using var leftLogits = PaddingFreeLogits(left, weights);
        using var rightLogps = SequenceLogProbs.Compute(rightLogits, right.Labels, right.CompletionMask);
        using var leftLogps = SequenceLogProbs.Compute(leftLogits, left.Labels, left.CompletionMask);
        Assert.Equal(rightLogps.TokenCount.data<long>().ToArray(), leftLogps.TokenCount.data<long>().ToArray());
        Assert.True(rightLogps.Sum.allclose(leftLogps.Sum, rtol: 1e-12, atol: 1e-12));
    }

    /// <summary>The stand-in model on a left-padded batch with the padding's contribution removed (as an attention mask would).</summary>
    private static Tensor PaddingFreeLogits(PreferenceBatch batch, Tensor weights)
    {
        var embedded = weights.index_select(0, batch.InputIds.reshape(-1)).reshape(batch.InputIds.shape[0], batch.InputIds.shape[1], -1);
        return (embedded * batch.AttentionMask.unsqueeze(-1).to(ScalarType.Float64)).cumsum(1);
    }

    [Fact]
    public void BatchesComeInOrderAndFeedThePreferenceLoss()
    {
        var pairs = SomePairs().Concat(SomePairs()).Take(5).ToList();
        var collator = new PreferenceCollator(padTokenId: 0);
        var batches = collator.Batches(pairs, batchSize: 2).ToList();
        Assert.Equal([2L, 2, 1], batches.Select(b => b.PairCount));
        using var second = collator.Collate([pairs[2], pairs[3]]);
        Assert.True(second.InputIds.eq(batches[1].InputIds).all().item<bool>());
        foreach (var b in batches) b.Dispose();

        using var batch = collator.Collate(pairs);
        using var weights = randn(Chars.VocabularySize, Chars.VocabularySize, dtype: ScalarType.Float64, generator: new Generator(1));
        using var dpo = new PreferenceLoss(new PreferenceOptions { Loss = PreferenceLossKind.SimPo });
        using var logits = CausalModel(batch.InputIds, weights);
        using var result = dpo.Compute(logits, batch.Labels, batch.CompletionMask);
        Assert.Equal(5, result.PairCount.item<long>());
        Assert.True(double.IsFinite(result.Loss.item<double>()));
    }

    [Fact]
    public void BadInputIsRejected()
    {
        var collator = new PreferenceCollator(0);
        Assert.Throws<ArgumentException>(() => collator.Collate([]));
        Assert.Throws<ArgumentException>(() => collator.Collate([SomePairs()[0], null!]));
        Assert.Throws<ArgumentException>(() => collator.Batches([], 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => collator.Batches(SomePairs(), 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new PreferenceCollator(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new PreferenceCollator(0, (PaddingSide)5));
    }

    [Fact]
    public void CollatingLeavesNothingBehind()
    {
        var pairs = SomePairs();
        foreach (var side in new[] { PaddingSide.Right, PaddingSide.Left })
        {
            var collator = new PreferenceCollator(0, side);
            LeakCheck.AssertNoGrowth(() =>
            {
                using var batch = collator.Collate(pairs);
                Assert.Equal(3, batch.PairCount);
            }, 20);
        }
    }
}
