using Microsoft.ML.Tokenizers;

namespace TorchLoss.Sft;

/// <summary>
/// Turns conversations into <see cref="SftExample"/>s whose labels train only the assistant: its content and
/// the end-of-turn marker after it. The conversation is rendered once, tokenized once with character offsets,
/// and a token is trained exactly when its character range overlaps a trained span (an assistant content, or
/// the end-of-turn marker that closes it). Nothing searches the token ids for a header, so the mask cannot
/// silently vanish when a header tokenizes differently in context.
/// </summary>
/// <remarks>
/// <para>A byte-level BPE token may straddle the boundary between the header and the content: GPT-2 encodes
/// <c>"Assistant: hi"</c> with the token <c>" hi"</c>, whose space belongs to the header. Such a token carries
/// content, so it is trained: the model must learn to write it. Likewise, with <see cref="SftOptions.TrainEndOfTurn"/>
/// off, a last answer token that swallows the marker's first character (GPT-2 writes <c>" &lt;"</c> for an
/// answer ending in a space followed by <c>&lt;|im_end|&gt;</c>) is trained. Such shares of a straddling token
/// are the only text outside the assistant contents and end-of-turn markers a trained token can hold, and
/// only at the edges of a trained span.</para>
/// <para>Every example is checked before it is returned: the tokens must decode back to the rendered text
/// and each trained run of tokens must decode to the characters its offsets claim.</para>
/// </remarks>
/// <example>
/// <code>
/// var builder = new SftExampleBuilder(tokenizer, ChatTemplate.ChatML, new SftOptions { MaxLength = 1024 });
/// SftExample example = builder.Build([ChatMessage.User("hello"), ChatMessage.Assistant("hi")]);
/// </code>
/// </example>
public sealed class SftExampleBuilder
{
    /// <summary>Creates a builder.</summary>
    /// <param name="tokenizer">Any tokenizer that reports token offsets (tiktoken/GPT-2 BPE, SentencePiece, <see cref="CharTokenizer"/>).</param>
    /// <param name="template">How conversations become text.</param>
    /// <param name="options">What is trained and how long examples may be.</param>
    /// <exception cref="ArgumentException">The template or the options are invalid.</exception>
    public SftExampleBuilder(Tokenizer tokenizer, ChatTemplate template, SftOptions options)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(template);
        ArgumentNullException.ThrowIfNull(options);
        template.Validate();
        options.Validate();
        Tokenizer = tokenizer;
        Template = template;
        Options = options;
    }

    /// <summary>The tokenizer.</summary>
    public Tokenizer Tokenizer { get; }

    /// <summary>The chat template.</summary>
    public ChatTemplate Template { get; }

    /// <summary>The options.</summary>
    public SftOptions Options { get; }

    /// <summary>Builds the example of one conversation.</summary>
    /// <param name="conversation">An optional system message, then user and assistant messages; it must end with an assistant message.</param>
    /// <exception cref="ArgumentException">The conversation is empty, has an unknown role, a null message or content, a misplaced system message, content containing the end-of-turn marker, no assistant message or does not end with one, or text the tokenizer cannot encode.</exception>
    /// <exception cref="SftExampleException">The conversation is too long for the truncation policy, or no token would be trained.</exception>
    public SftExample Build(IReadOnlyList<ChatMessage> conversation) => BuildConversation(conversation).Example;

    /// <summary>
    /// Builds a completion-only example from a raw prompt and completion (no role headers): the text is
    /// <c>BeginningOfSequence + prompt + completion + EndOfTurn</c> and only the completion and the
    /// end-of-turn marker are trained.
    /// </summary>
    /// <exception cref="ArgumentException">The prompt or completion is null or contains the end-of-turn marker, or holds text the tokenizer cannot encode.</exception>
    /// <exception cref="SftExampleException">
    /// The pair is too long: <see cref="TruncationPolicy.KeepStart"/> cuts it, but there are no turns to drop, so
    /// <see cref="TruncationPolicy.DropOldestTurns"/> rejects it like <see cref="TruncationPolicy.Error"/>; or no token would be trained.
    /// </exception>
    public SftExample Build(string prompt, string completion)
    {
        var rendered = Template.RenderCompletion(prompt, completion);
        var tokens = TokenizedText.Encode(Tokenizer, rendered.Text);
        if (tokens.Count <= Options.MaxLength)
            return Label(rendered, tokens, tokens.Count);
        if (Options.Truncation == TruncationPolicy.KeepStart)
            return Label(rendered, tokens, Options.MaxLength);
        var advice = Options.Truncation == TruncationPolicy.DropOldestTurns ? " A prompt/completion pair has no turns to drop; shorten the prompt or use KeepStart." : "";
        throw new SftExampleException(SftRejection.TooLong, $"The prompt/completion pair has {tokens.Count} tokens, more than MaxLength = {Options.MaxLength}.{advice}");
    }

    /// <summary>
    /// Builds the examples of many conversations, skipping (and counting) those that are well formed but yield
    /// no example: no trained token, or too long even after dropping turns. Malformed conversations still
    /// throw, and so does a too-long one under <see cref="TruncationPolicy.Error"/>.
    /// </summary>
    /// <exception cref="ArgumentException">A conversation is malformed; the message names its index.</exception>
    public SftBuildResult BuildMany(IEnumerable<IReadOnlyList<ChatMessage>> conversations)
    {
        ArgumentNullException.ThrowIfNull(conversations);
        var examples = new List<SftExample>();
        int noTrained = 0, tooLong = 0, truncated = 0, index = 0;
        foreach (var conversation in conversations)
        {
            try
            {
                var (example, wasTruncated) = BuildConversation(conversation);
                examples.Add(example);
                if (wasTruncated) truncated++;
            }
            catch (SftExampleException e) when (e.Reason == SftRejection.NoTrainedTokens)
            {
                noTrained++;
            }
            catch (SftExampleException e) when (e.Reason == SftRejection.TooLong && Options.Truncation != TruncationPolicy.Error)
            {
                tooLong++;
            }
            catch (ArgumentException e) when (e is not SftExampleException)
            {
                throw new ArgumentException($"Conversation {index}: {e.Message}", nameof(conversations), e);
            }
            index++;
        }
        return new SftBuildResult(examples, noTrained, tooLong, truncated);
    }

    private (SftExample Example, bool Truncated) BuildConversation(IReadOnlyList<ChatMessage> conversation)
    {
        ArgumentNullException.ThrowIfNull(conversation);
        if (conversation.Count == 0)
            throw new ArgumentException("The conversation is empty; it needs at least one assistant message to train on.", nameof(conversation));
        var rendered = Template.Render(conversation);   // checks every message
        if (!conversation.Any(m => m.Role == ChatRole.Assistant))
            throw new ArgumentException("The conversation has no assistant message, so nothing would be trained.", nameof(conversation));
        if (conversation[^1].Role != ChatRole.Assistant)
            throw new ArgumentException(
                $"The conversation ends with a {conversation[^1].Role.ToString().ToLowerInvariant()} message; a training conversation must end with the assistant's answer.", nameof(conversation));

        bool hasSystem = conversation[0].Role == ChatRole.System;
        var exchangeStarts = ExchangeStarts(conversation, hasSystem ? 1 : 0);
        for (int dropped = 0; ; dropped++)
        {
            if (dropped > 0)
                rendered = Template.Render(Keep(conversation, hasSystem, exchangeStarts[dropped]));
            var tokens = TokenizedText.Encode(Tokenizer, rendered.Text);
            if (tokens.Count <= Options.MaxLength)
                return (Label(rendered, tokens, tokens.Count), dropped > 0);
            switch (Options.Truncation)
            {
                case TruncationPolicy.KeepStart:
                    return (Label(rendered, tokens, Options.MaxLength), true);
                case TruncationPolicy.Error:
                    throw new SftExampleException(SftRejection.TooLong,
                        $"The conversation has {tokens.Count} tokens, more than MaxLength = {Options.MaxLength} (truncation policy Error).");
                case TruncationPolicy.DropOldestTurns when dropped + 1 >= exchangeStarts.Count:
                    throw new SftExampleException(SftRejection.TooLong,
                        $"Even the last exchange{(hasSystem ? " with the system message" : "")} has {tokens.Count} tokens, more than MaxLength = {Options.MaxLength}; no whole turns are left to drop.");
            }
        }
    }

    /// <summary>
    /// Where each exchange starts: an exchange is a run of user messages and the assistant messages answering
    /// them; a new one starts at each user message that follows an assistant message.
    /// </summary>
    private static List<int> ExchangeStarts(IReadOnlyList<ChatMessage> conversation, int first)
    {
        var starts = new List<int> { first };
        for (int i = first + 1; i < conversation.Count; i++)
            if (conversation[i].Role == ChatRole.User && conversation[i - 1].Role == ChatRole.Assistant)
                starts.Add(i);
        return starts;
    }

    private static List<ChatMessage> Keep(IReadOnlyList<ChatMessage> conversation, bool hasSystem, int from)
    {
        var kept = new List<ChatMessage>(conversation.Count - from + 1);
        if (hasSystem) kept.Add(conversation[0]);
        for (int i = from; i < conversation.Count; i++) kept.Add(conversation[i]);
        return kept;
    }

    /// <summary>Labels the first <paramref name="length"/> tokens and checks the result.</summary>
    private SftExample Label(RenderedChat rendered, TokenizedText tokens, int length)
    {
        if (length < 2)
            throw new SftExampleException(SftRejection.NoTrainedTokens, $"The text has {length} token(s); a causal LM needs at least 2.");
        // A turn cut short must not teach the model to stop: an end-of-turn marker counts only when kept whole.
        int keptEnd = length == tokens.Count ? int.MaxValue : tokens.Ends.Take(length).Max();
        var spans = TrainedSpans(rendered, keptEnd);

        var ids = tokens.Ids[..length];
        var labels = new long[length];
        for (int i = 0; i < length; i++)
        {
            bool trained = i > 0 && spans.Any(s => s.Overlaps(tokens.Starts[i], tokens.Ends[i]));
            labels[i] = trained ? ids[i] : SftExample.IgnoreIndex;
        }
        if (labels.All(l => l == SftExample.IgnoreIndex))
        {
            var why = length < tokens.Count
                ? $"after keeping the first {length} of {tokens.Count} tokens no assistant token is left"
                : "the trained assistant turns are empty and their end-of-turn markers are not trained";
            throw new SftExampleException(SftRejection.NoTrainedTokens, $"The conversation has no trained tokens: {why}.");
        }
        var example = new SftExample(ids, labels);
        CheckTrainedRuns(example, tokens);
        return example;
    }

    private List<CharSpan> TrainedSpans(RenderedChat rendered, int keptEnd)
    {
        var assistant = rendered.Messages.Where(m => m.Role == ChatRole.Assistant).ToList();
        if (Options.TrainOn == AssistantTurns.Last)
            assistant = assistant.Count == 0 ? assistant : [assistant[^1]];
        var spans = new List<CharSpan>(2 * assistant.Count);
        foreach (var message in assistant)
        {
            spans.Add(message.Content);
            if (Options.TrainEndOfTurn && message.EndOfTurn.End <= keptEnd)
                spans.Add(message.EndOfTurn);
        }
        return spans;
    }

    /// <summary>
    /// Decodes each trained run and compares it with the characters its offsets cover: a tokenizer whose
    /// offsets do not match its ids would otherwise yield a silently wrong mask.
    /// </summary>
    private void CheckTrainedRuns(SftExample example, TokenizedText tokens)
    {
        foreach (var run in example.TrainedRuns())
        {
            var (start, count) = run.GetOffsetAndLength(example.Length);
            var decoded = Tokenizer.Decode(example.InputIds[run]);
            var expected = tokens.Text[tokens.Starts[start]..tokens.Ends[start + count - 1]];
            if (!string.Equals(decoded, expected, StringComparison.Ordinal) && !TokenizedText.SameUpToWhitespace(decoded, expected))
                throw new InvalidOperationException(
                    $"{Tokenizer.GetType().Name} reported offsets that do not match its tokens: tokens {start}..{start + count} decode to \"{CharTokenizer.Escape(decoded)}\" but cover \"{CharTokenizer.Escape(expected)}\".");
        }
    }
}
