using System.Globalization;
using System.Text;

namespace TinyGpt;

/// <summary>
/// One token per character (per Unicode text element, so an emoji or a combining sequence stays whole), with the
/// vocabulary made of the characters of a training text, sorted by code point as in nanoGPT's shakespeare_char.
/// </summary>
public sealed class CharTokenizer : ITokenizer
{
    private readonly string[] symbols;
    private readonly Dictionary<string, int> ids;

    /// <summary>A tokenizer over exactly <paramref name="symbols"/>, in that order.</summary>
    /// <exception cref="ArgumentException">Symbols are empty or repeated.</exception>
    public CharTokenizer(IEnumerable<string> symbols)
    {
        ArgumentNullException.ThrowIfNull(symbols);
        this.symbols = symbols.ToArray();
        if (this.symbols.Length == 0)
            throw new ArgumentException("A character tokenizer needs at least one symbol.", nameof(symbols));
        ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < this.symbols.Length; i++)
        {
            if (!ids.TryAdd(this.symbols[i], i))
                throw new ArgumentException($"Symbol '{this.symbols[i]}' appears twice.", nameof(symbols));
        }
    }

    /// <summary>A tokenizer over the distinct characters of <paramref name="text"/>.</summary>
    public static CharTokenizer FromText(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return new CharTokenizer(Elements(text).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal));
    }

    /// <inheritdoc />
    public int VocabSize => symbols.Length;

    /// <inheritdoc />
    public string Name => $"characters ({VocabSize})";

    /// <summary>The symbol of each id.</summary>
    public IReadOnlyList<string> Symbols => symbols;

    /// <inheritdoc />
    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var result = new List<int>(text.Length);
        foreach (var element in Elements(text))
        {
            if (!ids.TryGetValue(element, out int id))
                throw new ArgumentException($"Character '{element}' (U+{char.ConvertToUtf32(element, 0):X4}) is not in the vocabulary.", nameof(text));
            result.Add(id);
        }
        return [.. result];
    }

    /// <inheritdoc />
    public string Decode(IEnumerable<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var text = new StringBuilder();
        foreach (int id in ids)
            text.Append(id >= 0 && id < symbols.Length ? symbols[id] : "\uFFFD");
        return text.ToString();
    }

    private static IEnumerable<string> Elements(string text)
    {
        var e = StringInfo.GetTextElementEnumerator(text);
        while (e.MoveNext())
            yield return e.GetTextElement();
    }
}
