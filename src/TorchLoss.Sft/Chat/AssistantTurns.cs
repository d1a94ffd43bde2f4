namespace TorchLoss.Sft;

/// <summary>Which assistant turns of a conversation contribute to the loss.</summary>
public enum AssistantTurns
{
    /// <summary>Every assistant turn: one conversation teaches every answer in it.</summary>
    All,

    /// <summary>
    /// Only the final assistant turn; earlier answers are context. Use it when earlier answers come from
    /// another model or are not worth imitating.
    /// </summary>
    Last,
}
