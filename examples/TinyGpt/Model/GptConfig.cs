namespace TinyGpt;

/// <summary>The shape of a <see cref="Gpt"/>: vocabulary, context window, depth and width.</summary>
/// <param name="VocabSize">Number of token ids the model reads and predicts.</param>
/// <param name="ContextLength">Longest sequence the model sees (size of the position table).</param>
/// <param name="Layers">Number of transformer blocks.</param>
/// <param name="Heads">Attention heads per block; must divide <paramref name="Dim"/>.</param>
/// <param name="Dim">Width of the residual stream.</param>
/// <param name="Dropout">Dropout probability on embeddings, attention and MLP outputs (0 turns it off).</param>
public sealed record GptConfig(int VocabSize, int ContextLength = 64, int Layers = 4, int Heads = 4, int Dim = 128, double Dropout = 0.0)
{
    /// <summary>Throws an <see cref="ArgumentException"/> naming the first value out of range.</summary>
    public void Validate()
    {
        if (VocabSize < 2)
            throw new ArgumentException($"VocabSize must be at least 2, got {VocabSize}.", nameof(VocabSize));
        if (ContextLength < 2)
            throw new ArgumentException($"ContextLength must be at least 2, got {ContextLength}.", nameof(ContextLength));
        if (Layers < 1)
            throw new ArgumentException($"Layers must be at least 1, got {Layers}.", nameof(Layers));
        if (Heads < 1)
            throw new ArgumentException($"Heads must be at least 1, got {Heads}.", nameof(Heads));
        if (Dim < 1 || Dim % Heads != 0)
            throw new ArgumentException($"Dim must be a positive multiple of Heads ({Heads}), got {Dim}.", nameof(Dim));
        if (double.IsNaN(Dropout) || Dropout < 0 || Dropout >= 1)
            throw new ArgumentException($"Dropout must be in [0, 1), got {Dropout}.", nameof(Dropout));
    }
}
