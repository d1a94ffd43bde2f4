using System.Text;

namespace TorchLoss.Sft;

/// <summary>
/// How a conversation becomes text: <c>BeginningOfSequence</c>, then per message
/// <c>header + content + EndOfTurn + TurnSeparator</c>. <see cref="Render"/> records the character span of
/// every part, which is what <see cref="SftExampleBuilder"/> uses to decide which tokens are trained; it
/// never searches the token ids for a header.
/// </summary>
/// <remarks>
/// Content may not contain the end-of-turn marker: the model learns to stop at that marker, so a marker
/// inside an answer would teach it to stop mid-answer (and a stop string would cut the answer there). With
/// <see cref="Plain"/> that means single-line messages; use <see cref="ChatML"/> or your own template for
/// multi-line text.
/// </remarks>
public sealed record ChatTemplate
{
    /// <summary>Text before a system message's content.</summary>
    public required string SystemHeader { get; init; }

    /// <summary>Text before a user message's content.</summary>
    public required string UserHeader { get; init; }

    /// <summary>Text before an assistant message's content (the prompt a model completes at inference).</summary>
    public required string AssistantHeader { get; init; }

    /// <summary>Text after every message's content; generation stops when the model writes it.</summary>
    public required string EndOfTurn { get; init; }

    /// <summary>Text between one turn's end-of-turn marker and the next header; never trained. Empty by default.</summary>
    public string TurnSeparator { get; init; } = "";

    /// <summary>Text at the very start of every rendered sequence, such as a tokenizer's BOS token; never trained. Empty by default.</summary>
    public string BeginningOfSequence { get; init; } = "";

    /// <summary>
    /// <c>System: ...\nUser: ...\nAssistant: ...\n</c>: readable text that a character-level model can learn.
    /// The end-of-turn marker is the newline, so messages are single lines.
    /// </summary>
    public static ChatTemplate Plain { get; } = new()
    {
        SystemHeader = "System: ",
        UserHeader = "User: ",
        AssistantHeader = "Assistant: ",
        EndOfTurn = "\n",
    };

    /// <summary>
    /// ChatML: <c>&lt;|im_start|&gt;role\n ... &lt;|im_end|&gt;\n</c>. The end-of-turn marker is
    /// <c>&lt;|im_end|&gt;</c>; the newline after it is a separator and is not trained.
    /// </summary>
    public static ChatTemplate ChatML { get; } = new()
    {
        SystemHeader = "<|im_start|>system\n",
        UserHeader = "<|im_start|>user\n",
        AssistantHeader = "<|im_start|>assistant\n",
        EndOfTurn = "<|im_end|>",
        TurnSeparator = "\n",
    };

    /// <summary>The header of <paramref name="role"/>.</summary>
    /// <exception cref="ArgumentException"><paramref name="role"/> is not a defined <see cref="ChatRole"/>.</exception>
    public string HeaderOf(ChatRole role) => role switch
    {
        ChatRole.System => SystemHeader,
        ChatRole.User => UserHeader,
        ChatRole.Assistant => AssistantHeader,
        _ => throw new ArgumentException($"Unknown chat role {(int)role}; expected System, User or Assistant.", nameof(role)),
    };

    /// <summary>Throws when the template cannot render unambiguous conversations.</summary>
    /// <exception cref="ArgumentException">A header or the end-of-turn marker is null or empty, or two role headers are equal.</exception>
    public void Validate()
    {
        CheckNonEmpty(SystemHeader, nameof(SystemHeader));
        CheckNonEmpty(UserHeader, nameof(UserHeader));
        CheckNonEmpty(AssistantHeader, nameof(AssistantHeader));
        CheckNonEmpty(EndOfTurn, nameof(EndOfTurn));
        if (TurnSeparator is null)
            throw new ArgumentException($"{nameof(TurnSeparator)} must not be null (use \"\").", nameof(TurnSeparator));
        if (BeginningOfSequence is null)
            throw new ArgumentException($"{nameof(BeginningOfSequence)} must not be null (use \"\").", nameof(BeginningOfSequence));
        if (SystemHeader == UserHeader || SystemHeader == AssistantHeader || UserHeader == AssistantHeader)
            throw new ArgumentException("The system, user and assistant headers must differ, or the model cannot tell who speaks.");
    }

    /// <summary>Renders a conversation and records where every part landed.</summary>
    /// <param name="conversation">The messages; a system message may only come first. May be empty (then only the beginning-of-sequence text is rendered).</param>
    /// <exception cref="ArgumentException">The template is invalid, or a message is null, has an unknown role or null content, contains the end-of-turn marker, or is a system message after the first position.</exception>
    public RenderedChat Render(IReadOnlyList<ChatMessage> conversation)
    {
        Validate();
        ArgumentNullException.ThrowIfNull(conversation);
        var text = new StringBuilder(BeginningOfSequence);
        var bos = new CharSpan(0, text.Length);
        var parts = new List<RenderedMessage>(conversation.Count);
        for (int i = 0; i < conversation.Count; i++)
        {
            var message = CheckMessage(conversation, i);
            var header = Append(text, HeaderOf(message.Role));
            var content = Append(text, message.Content);
            var endOfTurn = Append(text, EndOfTurn);
            var separator = Append(text, TurnSeparator);
            parts.Add(new RenderedMessage(i, message.Role, header, content, endOfTurn, separator));
        }
        return new RenderedChat(text.ToString(), bos, parts);
    }

    /// <summary>
    /// The text a model continues to answer: <paramref name="history"/> rendered, then the assistant header.
    /// Stop generating when the model writes <see cref="EndOfTurn"/>.
    /// </summary>
    /// <remarks>
    /// To prompt a model trained on <see cref="SftExampleBuilder"/> examples, use
    /// <see cref="SftExampleBuilder.BuildGenerationPrompt(IReadOnlyList{ChatMessage})"/>: it tokenizes this text
    /// in the same pieces as training did. Encoding this string in one piece can give other ids at the turn
    /// boundaries (GPT-2 ends <c>"Assistant: "</c> with a lone space token, which training never puts before an answer).
    /// </remarks>
    /// <exception cref="ArgumentException">As for <see cref="Render"/>, or <paramref name="history"/> ends with an assistant message.</exception>
    public string RenderGenerationPrompt(IReadOnlyList<ChatMessage> history) => RenderGeneration(history).Text;

    /// <summary><paramref name="history"/> rendered with the assistant header appended to its text (the messages' spans are unchanged).</summary>
    internal RenderedChat RenderGeneration(IReadOnlyList<ChatMessage> history)
    {
        ArgumentNullException.ThrowIfNull(history);
        if (history.Count > 0 && history[^1]?.Role == ChatRole.Assistant)
            throw new ArgumentException("The history for a generation prompt must not end with an assistant message: the model writes the next one.", nameof(history));
        var rendered = Render(history);
        return rendered with { Text = rendered.Text + AssistantHeader };
    }

    /// <summary>The text a model continues to complete <paramref name="prompt"/>: <c>BeginningOfSequence + prompt</c>, as in <see cref="RenderCompletion"/>.</summary>
    /// <exception cref="ArgumentException">The template is invalid, or the prompt is null or contains the end-of-turn marker.</exception>
    internal string RenderCompletionPrompt(string prompt)
    {
        Validate();
        CheckContent(prompt, nameof(prompt));
        return BeginningOfSequence + prompt;
    }

    /// <summary>
    /// Renders a raw prompt/completion pair, <c>BeginningOfSequence + prompt + completion + EndOfTurn</c>, with
    /// no role headers. The prompt is reported as a user message and the completion as an assistant message.
    /// </summary>
    /// <exception cref="ArgumentException">The template is invalid, or the prompt or completion is null or contains the end-of-turn marker.</exception>
    public RenderedChat RenderCompletion(string prompt, string completion)
    {
        Validate();
        CheckContent(prompt, nameof(prompt));
        CheckContent(completion, nameof(completion));
        var text = new StringBuilder(BeginningOfSequence);
        var bos = new CharSpan(0, text.Length);
        var promptHeader = Append(text, "");
        var promptContent = Append(text, prompt);
        var promptEnd = Append(text, "");
        var completionContent = Append(text, completion);
        var completionEnd = Append(text, EndOfTurn);
        var tail = Append(text, "");
        return new RenderedChat(text.ToString(), bos,
        [
            new RenderedMessage(0, ChatRole.User, promptHeader, promptContent, promptEnd, promptEnd),
            new RenderedMessage(1, ChatRole.Assistant, promptEnd, completionContent, completionEnd, tail),
        ]);
    }

    private ChatMessage CheckMessage(IReadOnlyList<ChatMessage> conversation, int index)
    {
        var message = conversation[index] ?? throw new ArgumentException($"Message {index} is null.", nameof(conversation));
        if (!Enum.IsDefined(message.Role))
            throw new ArgumentException($"Message {index} has the unknown role {(int)message.Role}; expected System, User or Assistant.", nameof(conversation));
        if (message.Role == ChatRole.System && index != 0)
            throw new ArgumentException($"Message {index} is a system message; a system message may only be the first message.", nameof(conversation));
        CheckContent(message.Content, $"{nameof(conversation)}[{index}].{nameof(ChatMessage.Content)}");
        return message;
    }

    private void CheckContent(string content, string name)
    {
        if (content is null)
            throw new ArgumentException($"{name} is null.", name);
        int at = content.IndexOf(EndOfTurn, StringComparison.Ordinal);
        if (at >= 0)
            throw new ArgumentException(
                $"{name} contains the end-of-turn marker \"{CharTokenizer.Escape(EndOfTurn)}\" at index {at}; the model would learn to stop there. Remove it or use a template whose marker cannot occur in text.",
                name);
    }

    private static void CheckNonEmpty(string value, string name)
    {
        if (string.IsNullOrEmpty(value))
            throw new ArgumentException($"{name} must be a non-empty string.", name);
    }

    private static CharSpan Append(StringBuilder text, string part)
    {
        int start = text.Length;
        text.Append(part);
        return new CharSpan(start, text.Length);
    }
}
