namespace TinyGpt;

/// <summary>Turns text into token ids and back.</summary>
public interface ITokenizer
{
    /// <summary>Number of distinct ids the tokenizer produces.</summary>
    int VocabSize { get; }

    /// <summary>A short description for logs, e.g. "characters (65)".</summary>
    string Name { get; }

    /// <summary>The ids of <paramref name="text"/>.</summary>
    /// <exception cref="ArgumentException">The text holds something the tokenizer cannot encode.</exception>
    int[] Encode(string text);

    /// <summary>The text of <paramref name="ids"/>.</summary>
    string Decode(IEnumerable<int> ids);
}
