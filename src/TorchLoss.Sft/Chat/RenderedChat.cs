namespace TorchLoss.Sft;

/// <summary>A conversation rendered to text by a <see cref="ChatTemplate"/>, with the character span of every part.</summary>
/// <param name="Text">The text the tokenizer sees.</param>
/// <param name="BeginningOfSequence">Where the template's beginning-of-sequence text landed (empty when it has none).</param>
/// <param name="Messages">One entry per rendered message, in order.</param>
public sealed record RenderedChat(string Text, CharSpan BeginningOfSequence, IReadOnlyList<RenderedMessage> Messages);
