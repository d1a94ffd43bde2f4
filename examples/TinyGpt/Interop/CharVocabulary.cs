using System.Text.Json;
using System.Text.Json.Serialization;
using TorchLoss.Sft;

namespace TinyGpt;

/// <summary>
/// A character vocabulary as nanoGPT's <c>meta.pkl</c> holds it (<c>vocab_size</c>, <c>itos</c>, <c>stoi</c>), stored
/// as <c>meta.json</c> beside exported weights. <c>itos</c> is a list, so Python's <c>itos[i]</c> decodes an id as it does
/// with nanoGPT's dict.
/// </summary>
public sealed record CharVocabulary
{
    /// <summary>The file name an export gives it.</summary>
    public const string FileName = "meta.json";

    /// <summary>Number of ids.</summary>
    [JsonPropertyName("vocab_size")]
    public required int VocabSize { get; init; }

    /// <summary>The text of each id, in id order.</summary>
    [JsonPropertyName("itos")]
    public required IReadOnlyList<string> Tokens { get; init; }

    /// <summary>The id of each token text.</summary>
    [JsonPropertyName("stoi")]
    public required IReadOnlyDictionary<string, int> Ids { get; init; }

    /// <summary>The vocabulary of <paramref name="tokenizer"/>, special tokens included.</summary>
    public static CharVocabulary From(CharTokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        var tokens = Enumerable.Range(0, tokenizer.VocabularySize).Select(tokenizer.GetToken).ToArray();
        return new CharVocabulary
        {
            VocabSize = tokens.Length,
            Tokens = tokens,
            Ids = tokens.Select((token, id) => (token, id)).ToDictionary(p => p.token, p => p.id, StringComparer.Ordinal),
        };
    }

    /// <summary>Reads a meta.json file.</summary>
    /// <exception cref="InvalidDataException">The file is malformed, or its vocab_size, itos and stoi disagree.</exception>
    public static CharVocabulary Read(string path)
    {
        var vocabulary = JsonFile.Read<CharVocabulary>(path, "a character vocabulary (vocab_size, itos, stoi)");
        if (vocabulary.Tokens.Count != vocabulary.VocabSize || vocabulary.Ids.Count != vocabulary.VocabSize)
            throw new InvalidDataException($"{path}: vocab_size is {vocabulary.VocabSize} but itos has {vocabulary.Tokens.Count} entries and stoi {vocabulary.Ids.Count}.");
        for (int id = 0; id < vocabulary.Tokens.Count; id++)
        {
            if (!vocabulary.Ids.TryGetValue(vocabulary.Tokens[id], out int back) || back != id)
                throw new InvalidDataException($"{path}: itos[{id}] is \"{vocabulary.Tokens[id]}\" but stoi does not map it back to {id}.");
        }
        return vocabulary;
    }

    /// <summary>Writes this vocabulary as indented JSON, atomically.</summary>
    public void Write(string path) => JsonFile.Write(path, this);

    /// <summary>
    /// The first id that this vocabulary and <paramref name="other"/> give different texts, or that only one of them has;
    /// null when they are the same.
    /// </summary>
    public int? FirstDifference(CharVocabulary other)
    {
        ArgumentNullException.ThrowIfNull(other);
        int common = Math.Min(VocabSize, other.VocabSize);
        for (int id = 0; id < common; id++)
        {
            if (!string.Equals(Tokens[id], other.Tokens[id], StringComparison.Ordinal))
                return id;
        }
        return VocabSize == other.VocabSize ? null : common;
    }

    /// <summary>The text of <paramref name="id"/> as a JSON string (quoted and escaped, so "\n" shows), or "(none)".</summary>
    public string Describe(int id) => id >= 0 && id < VocabSize ? JsonSerializer.Serialize(Tokens[id]) : "(none)";
}
