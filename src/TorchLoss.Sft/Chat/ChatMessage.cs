namespace TorchLoss.Sft;

/// <summary>One message of a conversation.</summary>
/// <param name="Role">Who speaks.</param>
/// <param name="Content">What is said, exactly as it should appear between the role header and the end-of-turn marker.</param>
public sealed record ChatMessage(ChatRole Role, string Content)
{
    /// <summary>A system message.</summary>
    public static ChatMessage System(string content) => new(ChatRole.System, content);

    /// <summary>A user message.</summary>
    public static ChatMessage User(string content) => new(ChatRole.User, content);

    /// <summary>An assistant message.</summary>
    public static ChatMessage Assistant(string content) => new(ChatRole.Assistant, content);
}
