using System.Text.Json.Serialization;

namespace TinyGpt;

/// <summary>
/// A model's shape as nanoGPT's <c>GPTConfig</c> spells it, stored as <c>config.json</c> beside exported weights:
/// in Python, <c>GPTConfig(**json.load(f))</c> rebuilds it.
/// </summary>
public sealed record NanoGptConfig
{
    /// <summary>The file name an export gives it.</summary>
    public const string FileName = "config.json";

    /// <summary>Context length (<see cref="GptConfig.ContextLength"/>).</summary>
    [JsonPropertyName("block_size")]
    public required int BlockSize { get; init; }

    /// <summary>Vocabulary size (<see cref="GptConfig.VocabSize"/>).</summary>
    [JsonPropertyName("vocab_size")]
    public required int VocabSize { get; init; }

    /// <summary>Number of blocks (<see cref="GptConfig.Layers"/>).</summary>
    [JsonPropertyName("n_layer")]
    public required int Layers { get; init; }

    /// <summary>Attention heads (<see cref="GptConfig.Heads"/>).</summary>
    [JsonPropertyName("n_head")]
    public required int Heads { get; init; }

    /// <summary>Width (<see cref="GptConfig.Dim"/>).</summary>
    [JsonPropertyName("n_embd")]
    public required int Dim { get; init; }

    /// <summary>Dropout probability the model was trained with.</summary>
    [JsonPropertyName("dropout")]
    public double Dropout { get; init; }

    /// <summary>
    /// Whether the Linears and LayerNorms have biases. TinyGpt always has them; it loads a bias-free model by
    /// setting them to zero, which computes the same function.
    /// </summary>
    [JsonPropertyName("bias")]
    public bool Bias { get; init; } = true;

    /// <summary>The nanoGPT form of <paramref name="config"/>.</summary>
    public static NanoGptConfig From(GptConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return new NanoGptConfig
        {
            BlockSize = config.ContextLength, VocabSize = config.VocabSize, Layers = config.Layers,
            Heads = config.Heads, Dim = config.Dim, Dropout = config.Dropout,
        };
    }

    /// <summary>The TinyGpt shape, with <paramref name="dropout"/> (a training choice) instead of the stored one when given.</summary>
    /// <exception cref="ArgumentException">A value is out of range for a <see cref="Gpt"/>.</exception>
    public GptConfig ToGptConfig(double? dropout = null)
    {
        var config = new GptConfig(VocabSize, BlockSize, Layers, Heads, Dim, dropout ?? Dropout);
        config.Validate();
        return config;
    }

    /// <summary>Reads a config.json file.</summary>
    /// <exception cref="InvalidDataException">The file is not a JSON object with block_size, vocab_size, n_layer, n_head and n_embd.</exception>
    public static NanoGptConfig Read(string path) =>
        JsonFile.Read<NanoGptConfig>(path, "a nanoGPT config (block_size, vocab_size, n_layer, n_head, n_embd)");

    /// <summary>Writes this config as indented JSON, atomically.</summary>
    public void Write(string path) => JsonFile.Write(path, this);
}
