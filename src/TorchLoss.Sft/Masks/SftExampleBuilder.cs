using Microsoft.ML.Tokenizers;

namespace TorchLoss.Sft;

/// <summary>
/// Turns conversations into <see cref="SftExample"/>s whose labels train only the assistant: its content and
/// the end-of-turn marker after it. The conversation is rendered once and tokenized in segments cut at every
/// assistant turn: the text up to and including an assistant header, the assistant content, and its end-of-turn
/// marker are each tokenized alone, and the ids are concatenated. A token is trained exactly when it lies in a
/// trained segment; nothing searches the token ids for a header, so the mask cannot silently vanish when a
/// header tokenizes differently in context.
/// </summary>
/// <remarks>
/// <para>What the model is trained on is what it sees at inference: <see cref="BuildGenerationPrompt(IReadOnlyList{ChatMessage})"/>
/// tokenizes a history in the same segments, so for every trained assistant turn the ids of its generation
/// prompt are a prefix of the example's ids, and the turn's trained labels start right after that prefix.
/// Tokenizing the whole text at once cannot promise this: GPT-2 writes <c>"Assistant: Paris"</c> as
/// <c>…, ":", " Paris"</c> but the prompt <c>"Assistant: "</c> as <c>…, ":", " "</c>, so the model would be
/// trained after <c>":"</c> and asked to continue after <c>" "</c>.</para>
/// <para>The price: no token crosses a cut, so the text at a cut is tokenized as two pieces even where the
/// tokenizer would merge it (GPT-2 gives the header's space a token of its own and writes <c>"Paris"</c>, not
/// <c>" Paris"</c>). A model trained from scratch does not care; a pretrained model meets a split it rarely saw,
/// so prefer headers that end in a newline or a special token (<see cref="ChatTemplate.ChatML"/>), where
/// byte-level BPE cuts anyway. Whatever a tokenizer adds to every text it encodes, it adds to every segment:
/// turn off a tokenizer's own beginning-of-sequence token and put it in <see cref="ChatTemplate.BeginningOfSequence"/>;
/// a SentencePiece dummy prefix gives every segment a leading space.</para>
/// <para>Every segment is checked when it is tokenized: its tokens must cover its text and decode back to it,
/// so a trained run decodes to exactly the assistant text it stands for.</para>
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
    /// end-of-turn marker are trained. The three parts are tokenized separately, so no trained token holds
    /// prompt text (GPT-2 would otherwise merge <c>"…: cat" + "chat"</c> into the token <c>" catch"</c>), and the
    /// ids start with <see cref="BuildGenerationPrompt(string)"/>'s.
    /// </summary>
    /// <exception cref="ArgumentException">The prompt or completion is null or contains the end-of-turn marker, or holds text the tokenizer cannot encode.</exception>
    /// <exception cref="SftExampleException">
    /// The pair is too long: <see cref="TruncationPolicy.KeepStart"/> cuts it, but there are no turns to drop, so
    /// <see cref="TruncationPolicy.DropOldestTurns"/> rejects it like <see cref="TruncationPolicy.Error"/>; or no token would be trained.
    /// </exception>
    public SftExample Build(string prompt, string completion)
    {
        var rendered = Template.RenderCompletion(prompt, completion);
        var tokens = Tokenize(rendered);
        if (tokens.Count <= Options.MaxLength)
            return Label(rendered, tokens, tokens.Count);
        if (Options.Truncation == TruncationPolicy.KeepStart)
            return Label(rendered, tokens, Options.MaxLength);
        var advice = Options.Truncation == TruncationPolicy.DropOldestTurns ? " A prompt/completion pair has no turns to drop; shorten the prompt or use KeepStart." : "";
        throw new SftExampleException(SftRejection.TooLong, $"The prompt/completion pair has {tokens.Count} tokens, more than MaxLength = {Options.MaxLength}.{advice}");
    }

    /// <summary>
    /// The token ids a model continues to write the next assistant answer: <paramref name="history"/> rendered
    /// with the assistant header after it (<see cref="ChatTemplate.RenderGenerationPrompt"/>), tokenized in the
    /// same segments as <see cref="Build(IReadOnlyList{ChatMessage})"/>. Building a conversation that continues
    /// this history with an assistant message gives an example whose ids start with these, with that answer's
    /// labels starting right after them. Stop generating when the decoded output holds <see cref="ChatTemplate.EndOfTurn"/>.
    /// </summary>
    /// <remarks>Nothing is truncated: drop old turns yourself if the prompt and the answer must fit a context.</remarks>
    /// <param name="history">An optional system message, then user and assistant messages; it must not end with an assistant message. May be empty.</param>
    /// <exception cref="ArgumentException">A message is malformed (as for <see cref="Build(IReadOnlyList{ChatMessage})"/>), the history ends with an assistant message, or holds text the tokenizer cannot encode.</exception>
    public int[] BuildGenerationPrompt(IReadOnlyList<ChatMessage> history) => Tokenize(Template.RenderGeneration(history)).Ids;

    /// <summary>
    /// The token ids a model continues to write a completion of <paramref name="prompt"/>:
    /// <c>BeginningOfSequence + prompt</c>, tokenized as <see cref="Build(string, string)"/> tokenizes it, so
    /// every example built from this prompt starts with these ids and trains the completion right after them.
    /// </summary>
    /// <exception cref="ArgumentException">The prompt is null, contains the end-of-turn marker, or holds text the tokenizer cannot encode.</exception>
    public int[] BuildGenerationPrompt(string prompt) => TokenizedText.Encode(Tokenizer, Template.RenderCompletionPrompt(prompt), []).Ids;

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
            var tokens = Tokenize(rendered);
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
    internal static List<int> ExchangeStarts(IReadOnlyList<ChatMessage> conversation, int first)
    {
        var starts = new List<int> { first };
        for (int i = first + 1; i < conversation.Count; i++)
            if (conversation[i].Role == ChatRole.User && conversation[i - 1].Role == ChatRole.Assistant)
                starts.Add(i);
        return starts;
    }

    internal static List<ChatMessage> Keep(IReadOnlyList<ChatMessage> conversation, bool hasSystem, int from)
    {
        var kept = new List<ChatMessage>(conversation.Count - from + 1);
        if (hasSystem) kept.Add(conversation[0]);
        for (int i = from; i < conversation.Count; i++) kept.Add(conversation[i]);
        return kept;
    }

    /// <summary>
    /// Tokenizes a rendered text in segments cut where each assistant turn's content starts (right after its
    /// header), where its end-of-turn marker starts, and where that marker ends: every token then lies wholly
    /// inside one part, and the tokens before an assistant content are those of its generation prompt. The cuts
    /// depend only on where the assistant turns are, never on the options, so that inference can reproduce them.
    /// </summary>
    private TokenizedText Tokenize(RenderedChat rendered) =>
        TokenizedText.Encode(Tokenizer, rendered.Text, rendered.Messages
            .Where(m => m.Role == ChatRole.Assistant)
            .SelectMany(m => new[] { m.Content.Start, m.EndOfTurn.Start, m.EndOfTurn.End }));

    /// <summary>Labels the first <paramref name="length"/> tokens: a token is trained when the segment it was encoded in is a trained span.</summary>
    private SftExample Label(RenderedChat rendered, TokenizedText tokens, int length)
    {
        if (length < 2)
            throw new SftExampleException(SftRejection.NoTrainedTokens, $"The text has {length} token(s); a causal LM needs at least 2.");
        // A turn cut short must not teach the model to stop: an end-of-turn marker counts only when kept whole.
        CharSpan? cutSegment = length < tokens.Count ? tokens.Segments[length] : null;
        var spans = TrainedSpans(rendered, cutSegment);

        var ids = tokens.Ids[..length];
        var labels = new long[length];
        for (int i = 0; i < length; i++)
            labels[i] = i > 0 && spans.Contains(tokens.Segments[i]) ? ids[i] : SftExample.IgnoreIndex;
        if (labels.All(l => l == SftExample.IgnoreIndex))
        {
            var why = length < tokens.Count
                ? $"after keeping the first {length} of {tokens.Count} tokens no assistant token is left"
                : "the trained assistant turns are empty and their end-of-turn markers are not trained";
            throw new SftExampleException(SftRejection.NoTrainedTokens, $"The conversation has no trained tokens: {why}.");
        }
        return new SftExample(ids, labels);
    }

    /// <summary>The trained contents and end-of-turn markers; each is exactly one segment of the tokenized text.</summary>
    private HashSet<CharSpan> TrainedSpans(RenderedChat rendered, CharSpan? cutSegment)
    {
        var assistant = rendered.Messages.Where(m => m.Role == ChatRole.Assistant).ToList();
        if (Options.TrainOn == AssistantTurns.Last)
            assistant = assistant.Count == 0 ? assistant : [assistant[^1]];
        var spans = new HashSet<CharSpan>();
        foreach (var message in assistant)
        {
            if (message.Content.Length > 0)
                spans.Add(message.Content);
            if (Options.TrainEndOfTurn && message.EndOfTurn != cutSegment)
                spans.Add(message.EndOfTurn);
        }
        return spans;
    }
}
