namespace TorchLoss.Sft;

/// <summary>Why a well-formed conversation yields no training example.</summary>
public enum SftRejection
{
    /// <summary>
    /// No token would be trained (for example the only assistant turn was cut off, or it is empty and its
    /// end-of-turn is not trained). Training on it would add nothing, or divide zero by zero.
    /// </summary>
    NoTrainedTokens,

    /// <summary>The conversation is longer than <see cref="SftOptions.MaxLength"/> and the truncation policy cannot make it fit.</summary>
    TooLong,
}
