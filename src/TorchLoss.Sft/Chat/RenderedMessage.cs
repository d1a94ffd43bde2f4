namespace TorchLoss.Sft;

/// <summary>Where each part of one message landed in a <see cref="RenderedChat"/>'s text.</summary>
/// <param name="MessageIndex">The message's index in the conversation that was rendered.</param>
/// <param name="Role">Who speaks.</param>
/// <param name="Header">The role header, such as "Assistant: " (never trained).</param>
/// <param name="Content">The message content.</param>
/// <param name="EndOfTurn">The end-of-turn marker (trained after assistant content unless <see cref="SftOptions.TrainEndOfTurn"/> is false).</param>
/// <param name="Separator">Text between this turn and the next, such as ChatML's newline (never trained).</param>
public sealed record RenderedMessage(int MessageIndex, ChatRole Role, CharSpan Header, CharSpan Content, CharSpan EndOfTurn, CharSpan Separator);
