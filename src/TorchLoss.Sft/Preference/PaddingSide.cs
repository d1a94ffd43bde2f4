namespace TorchLoss.Sft;

/// <summary>Where <see cref="PreferenceCollator"/> puts the padding of a row shorter than the batch.</summary>
public enum PaddingSide
{
    /// <summary>After the tokens: positions start at 0 in every row, what a causal model without position ids needs.</summary>
    Right,

    /// <summary>Before the tokens, so every row ends at the last column; feed the batch's position ids and attention mask to the model.</summary>
    Left,
}
