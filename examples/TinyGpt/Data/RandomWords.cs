namespace TinyGpt;

/// <summary>Random lowercase "words" for the synthetic chat data sets (ChatSft's chatter, Preference's questions).</summary>
public static class RandomWords
{
    /// <summary>A word of <paramref name="minLength"/> to <paramref name="maxLength"/> letters among the first <paramref name="letters"/> of a–z, drawn from <paramref name="random"/> (the length first, then each letter).</summary>
    public static string Next(SplitMix64 random, int minLength, int maxLength, int letters = 26)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(letters, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(letters, 26);
        ArgumentNullException.ThrowIfNull(random);
        ArgumentOutOfRangeException.ThrowIfLessThan(minLength, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLength, minLength);
        int length = minLength + (int)random.NextInt64(maxLength - minLength + 1);
        return string.Create(length, random, (span, r) =>
        {
            for (int i = 0; i < span.Length; i++) span[i] = (char)('a' + r.NextInt64(letters));
        });
    }
}
