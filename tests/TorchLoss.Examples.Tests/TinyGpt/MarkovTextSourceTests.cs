using TinyGpt;

namespace TorchLoss.Examples.Tests.TinyGpt;

/// <summary>The embedded corpus's source: its closed-form entropy rate against a Monte-Carlo estimate.</summary>
public sealed class MarkovTextSourceTests
{
    [Fact]
    public void Entropy_rate_matches_a_Monte_Carlo_estimate_from_a_long_sample()
    {
        var source = SyntheticCorpus.Source;
        string sample = source.Generate(400_000, new SplitMix64(7));
        double estimate = -source.LogLikelihood(sample) / (sample.Length - source.Order);
        // The per-character log-likelihood has a standard deviation below 1 nat, so 400k (weakly correlated) characters
        // pin the mean to well within 0.01.
        Assert.InRange(estimate, source.EntropyRate - 0.01, source.EntropyRate + 0.01);
        Assert.InRange(source.EntropyRate, 0.3, 0.5);
    }

    [Fact]
    public void Entropy_rate_of_a_known_chain_is_exact()
    {
        // "ab" as a circle with order 1: a→b and b→a always, a deterministic source.
        Assert.Equal(0, new MarkovTextSource("ab", 1).EntropyRate, 12);
        // "aab" as a circle: after a comes a or b (½ each, from the 2 a's), after b always a; π(a) = 2/3.
        Assert.Equal(2.0 / 3 * Math.Log(2), new MarkovTextSource("aab", 1).EntropyRate, 12);
    }

    [Fact]
    public void Next_distribution_is_the_exact_transition_row()
    {
        var source = new MarkovTextSource("aab", 1);
        Assert.Equal(new[] { 0.5, 0.5, 0.0 }, source.NextDistribution("a", ['a', 'b', 'c']));
        Assert.Equal(new[] { 0.0, 1.0 }, source.NextDistribution("b", ['b', 'a']));
        Assert.Contains("not a context", Assert.Throws<ArgumentException>(() => source.NextDistribution("c", ['a', 'b'])).Message);
        Assert.Contains("lacks 'b'", Assert.Throws<ArgumentException>(() => source.NextDistribution("a", ['a'])).Message);
    }

    [Fact]
    public void Windowed_floor_lies_above_the_entropy_rate_and_tends_to_it()
    {
        var source = SyntheticCorpus.Source;
        Assert.True(source.ConditionalEntropy(1) > source.ConditionalEntropy(2));
        Assert.True(source.ConditionalEntropy(2) > source.EntropyRate);
        Assert.Equal(source.EntropyRate, source.ConditionalEntropy(source.Order), 12);
        Assert.True(source.WindowedFloor(32) > source.WindowedFloor(64));
        Assert.True(source.WindowedFloor(64) > source.EntropyRate);
        Assert.InRange(source.WindowedFloor(100_000) - source.EntropyRate, 0, 1e-4);
    }

    [Fact]
    public void Generated_text_is_deterministic_in_the_seed()
    {
        Assert.Equal(SyntheticCorpus.Generate(1, 1000), SyntheticCorpus.Generate(1, 1000));
        Assert.NotEqual(SyntheticCorpus.Generate(1, 1000), SyntheticCorpus.Generate(2, 1000));
    }
}
