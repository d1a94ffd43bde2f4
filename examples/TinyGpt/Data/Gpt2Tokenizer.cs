using Microsoft.ML.Tokenizers;

namespace TinyGpt;

/// <summary>GPT-2's byte-level BPE (50,257 ids) through Microsoft.ML.Tokenizers, with its vocabulary shipped in a package (no download).</summary>
public sealed class Gpt2Tokenizer : ITokenizer
{
    private readonly TiktokenTokenizer tokenizer = TiktokenTokenizer.CreateForModel("gpt2");

    /// <inheritdoc />
    public int VocabSize => 50257;

    /// <inheritdoc />
    public string Name => "GPT-2 BPE (50257)";

    /// <inheritdoc />
    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return [.. tokenizer.EncodeToIds(text)];
    }

    /// <inheritdoc />
    public string Decode(IEnumerable<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        return tokenizer.Decode(ids);
    }
}
