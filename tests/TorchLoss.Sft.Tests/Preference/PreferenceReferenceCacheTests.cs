using TorchLoss.Sft;
using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss.Sft.Tests.Preference;

public class PreferenceReferenceCacheTests
{
    private static readonly List<PreferencePair> Data = [.. PreferenceCollatorTests.SomePairs(), .. PreferenceCollatorTests.SomePairs().Take(2)];

    private static readonly PreferenceCollator Collator = new(padTokenId: 0);

    private static PreferenceReference Direct(PreferenceBatch batch, Tensor weights) =>
        PreferenceReference.FromLogits(PreferenceCollatorTests.CausalModel(batch.InputIds, weights), batch.Labels, batch.CompletionMask);

    private static Tensor Weights() => randn(SftTestKit.Chars.VocabularySize, SftTestKit.Chars.VocabularySize, dtype: ScalarType.Float64, generator: new Generator(11));

    [Fact]
    public void CachedValuesEqualADirectComputationInAnyOrder()
    {
        using var weights = Weights();
        bool sawGrad = true;
        var cache = PreferenceReferenceCache.Compute(Collator.Batches(Data, batchSize: 2), batch =>
        {
            sawGrad = is_grad_enabled();
            return Direct(batch, weights);
        });
        Assert.False(sawGrad);
        Assert.Equal(5, cache.PairCount);

        int[] order = [3, 1, 4];
        using var batch = Collator.Collate(order.Select(i => Data[i]).ToList());
        using var direct = Direct(batch, weights);
        using var cached = cache.Select(order);
        Assert.Equal(direct.Chosen.TokenCount.data<long>().ToArray(), cached.Chosen.TokenCount.data<long>().ToArray());
        Assert.Equal(direct.Rejected.TokenCount.data<long>().ToArray(), cached.Rejected.TokenCount.data<long>().ToArray());
        Assert.True(direct.Chosen.Sum.allclose(cached.Chosen.Sum, rtol: 1e-12, atol: 1e-12));
        Assert.True(direct.Rejected.Sum.allclose(cached.Rejected.Sum, rtol: 1e-12, atol: 1e-12));

        // The loss a training step computes is the same with either reference.
        using var policyWeights = weights + 0.1 * randn(weights.shape, dtype: ScalarType.Float64, generator: new Generator(2));
        using var logits = PreferenceCollatorTests.CausalModel(batch.InputIds, policyWeights);
        using var dpo = new PreferenceLoss();
        using var withDirect = dpo.Compute(logits, batch.Labels, batch.CompletionMask, direct);
        using var withCache = dpo.Compute(logits, batch.Labels, batch.CompletionMask, cached);
        Assert.Equal(withDirect.Loss.item<double>(), withCache.Loss.item<double>(), 12);
        Assert.True(withDirect.ChosenRewards.allclose(withCache.ChosenRewards, rtol: 1e-12, atol: 1e-12));
    }

    [Fact]
    public void SliceIsSelectOfARange()
    {
        using var weights = Weights();
        var cache = PreferenceReferenceCache.Compute(Collator.Batches(Data, batchSize: 3), batch => Direct(batch, weights));
        using var slice = cache.Slice(1, 3);
        using var select = cache.Select([1, 2, 3]);
        Assert.True(slice.Chosen.Sum.eq(select.Chosen.Sum).all().item<bool>());
        Assert.True(slice.Rejected.TokenCount.eq(select.Rejected.TokenCount).all().item<bool>());
    }

    [Fact]
    public void ACacheReadInTheWrongOrderIsCaughtByTheLoss()
    {
        using var weights = Weights();
        var cache = PreferenceReferenceCache.Compute(Collator.Batches(Data, batchSize: 2), batch => Direct(batch, weights));
        using var batch = Collator.Collate([Data[0], Data[1]]);
        using var logits = PreferenceCollatorTests.CausalModel(batch.InputIds, weights);
        using var wrong = cache.Select([1, 0]);
        using var dpo = new PreferenceLoss();
        var error = Assert.Throws<ArgumentException>(() => dpo.Compute(logits, batch.Labels, batch.CompletionMask, wrong));
        Assert.Contains("counted tokens", error.Message);
    }

    [Fact]
    public void BadInputIsRejected()
    {
        using var weights = Weights();
        var cache = PreferenceReferenceCache.Compute(Collator.Batches(Data, batchSize: 5), batch => Direct(batch, weights));
        Assert.Throws<ArgumentException>(() => cache.Select([]));
        Assert.Contains("outside", Assert.Throws<ArgumentException>(() => cache.Select([0, 5])).Message);
        Assert.Throws<ArgumentException>(() => cache.Select([-1]));
        Assert.Throws<ArgumentException>(() => cache.Slice(3, 3));
        Assert.Throws<ArgumentException>(() => cache.Slice(0, 0));
        Assert.Throws<ArgumentException>(() => PreferenceReferenceCache.Compute(Array.Empty<PreferenceBatch>(), batch => Direct(batch, weights)));
        Assert.Throws<ArgumentException>(() => PreferenceReferenceCache.Compute(Collator.Batches(Data, 2), _ => null!));
    }

    [Fact]
    public void ThePassFreesEveryBatchAndSelectLeavesNothingBehind()
    {
        using var weights = Weights();
        PreferenceReferenceCache? cache = null;
        LeakCheck.AssertNoGrowth(() => cache = PreferenceReferenceCache.Compute(Collator.Batches(Data, batchSize: 2), batch => Direct(batch, weights)), 5);
        LeakCheck.AssertNoGrowth(() =>
        {
            using var reference = cache!.Select([4, 0, 2]);
            Assert.Equal(3, reference.Chosen.Count);
        }, 20);
    }
}
