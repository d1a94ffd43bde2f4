namespace TinyGpt;

/// <summary>
/// The default corpus: text sampled from a third-order character Markov chain built from a short nursery-style seed,
/// so it looks like English-ish sentences while its entropy rate is known exactly (see <see cref="MarkovTextSource"/>).
/// </summary>
public static class SyntheticCorpus
{
    /// <summary>The chain's order: three characters of context decide the next one.</summary>
    public const int Order = 3;

    /// <summary>Characters generated for the default run (split 90/10 into train and validation).</summary>
    public const int DefaultLength = 200_000;

    /// <summary>The seed text whose circular 3-gram counts define the source.</summary>
    public const string SeedText =
        "the cat sat on the mat. the dog sat on the log. a cat saw a dog and the dog ran. " +
        "the bird sang in the tree and the cat sat still. a dog ate the bread. the man fed the bird. " +
        "the girl saw the cat on the wall. a boy ran to the tree. the sun was warm and the cat slept. " +
        "the dog and the boy ran on the sand. the bird flew over the wall. a man sat by the tree and read. " +
        "the girl had a red hat and the boy had a blue boat. the boat was on the pond. " +
        "a frog sat on a stone by the pond and sang. the cat did not like the frog. ";

    /// <summary>The source itself.</summary>
    public static MarkovTextSource Source { get; } = new(SeedText, Order);

    /// <summary><paramref name="length"/> characters of the source, fixed by <paramref name="seed"/>.</summary>
    public static string Generate(ulong seed, int length = DefaultLength) => Source.Generate(length, new SplitMix64(seed));
}
