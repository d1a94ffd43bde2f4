namespace TorchLoss.Sft;

/// <summary>Who speaks a message of a conversation.</summary>
public enum ChatRole
{
    /// <summary>Instructions that frame the conversation; never trained, kept by turn-dropping truncation.</summary>
    System,

    /// <summary>The person talking to the model; never trained.</summary>
    User,

    /// <summary>The model; its content (and end-of-turn marker) is what SFT trains.</summary>
    Assistant,
}
