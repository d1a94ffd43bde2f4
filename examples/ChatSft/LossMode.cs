namespace ChatSft;

/// <summary>Which tokens of a conversation the training loss counts.</summary>
public enum LossMode
{
    /// <summary>Every token: user text, role headers and answers alike (plain language modelling of the transcript).</summary>
    Full,

    /// <summary>Only the assistant's answers and their end-of-turn markers (TorchLoss's <c>SftExampleBuilder</c>).</summary>
    AssistantOnly,
}
