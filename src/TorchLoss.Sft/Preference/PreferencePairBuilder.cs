using Microsoft.ML.Tokenizers;

namespace TorchLoss.Sft;

/// <summary>
/// Turns (a conversation up to the assistant's turn, a chosen answer, a rejected answer) into a <see cref="PreferencePair"/>.
/// Each side is built by an <see cref="SftExampleBuilder"/> that trains only the last answer and its end-of-turn marker,
/// so both sides carry the prompt tokens <see cref="SftExampleBuilder.BuildGenerationPrompt(IReadOnlyList{ChatMessage})"/>
/// gives, the ids a model sees when it generates the answer; the builder checks that they do.
/// </summary>
/// <remarks>
/// Nothing is silently empty: an empty answer, two conversations whose prompts differ, and a pair that cannot fit
/// <see cref="PreferencePairOptions.MaxLength"/> under its truncation policy are errors (the last an
/// <see cref="SftExampleException"/> with <see cref="SftRejection.TooLong"/>, so a data pipeline can count and skip it).
/// </remarks>
/// <example>
/// <code>
/// var builder = new PreferencePairBuilder(tokenizer, ChatTemplate.ChatML, new PreferencePairOptions { MaxLength = 1024 });
/// PreferencePair pair = builder.Build([ChatMessage.User("2+2?")], chosen: "4", rejected: "5");
/// </code>
/// </example>
public sealed class PreferencePairBuilder
{
    private readonly SftExampleBuilder sides;

    /// <summary>Creates a builder.</summary>
    /// <param name="tokenizer">Any tokenizer that reports token offsets, as for <see cref="SftExampleBuilder"/>.</param>
    /// <param name="template">How conversations become text.</param>
    /// <param name="options">The length limit and truncation policy.</param>
    /// <exception cref="ArgumentException">The template or the options are invalid.</exception>
    public PreferencePairBuilder(Tokenizer tokenizer, ChatTemplate template, PreferencePairOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        sides = new SftExampleBuilder(tokenizer, template, options.SideOptions);
        Options = options;
    }

    /// <summary>The options.</summary>
    public PreferencePairOptions Options { get; }

    /// <summary>The builder of each side (only the last answer and its end-of-turn marker trained); its generation prompt is the pair's prompt.</summary>
    public SftExampleBuilder SideBuilder => sides;

    /// <summary>Builds the pair of two answers to one conversation.</summary>
    /// <param name="history">The conversation up to the assistant's turn: an optional system message, then user and assistant messages, ending with a user message. May be empty.</param>
    /// <param name="chosen">The preferred assistant answer; not empty.</param>
    /// <param name="rejected">The other answer; not empty.</param>
    /// <exception cref="ArgumentException">An answer is null or empty, the history ends with an assistant message, or a message is malformed (as for <see cref="SftExampleBuilder.Build(IReadOnlyList{ChatMessage})"/>).</exception>
    /// <exception cref="SftExampleException">The pair cannot fit <see cref="PreferencePairOptions.MaxLength"/> under the truncation policy (<see cref="SftRejection.TooLong"/>).</exception>
    public PreferencePair Build(IReadOnlyList<ChatMessage> history, string chosen, string rejected)
    {
        ArgumentNullException.ThrowIfNull(history);
        CheckAnswer(chosen, nameof(chosen));
        CheckAnswer(rejected, nameof(rejected));
        if (history.Count > 0 && history[^1]?.Role == ChatRole.Assistant)
            throw new ArgumentException("The history must end before the assistant's turn (with a user message); the chosen and rejected answers are that turn.", nameof(history));
        List<ChatMessage> conversation = [.. history, ChatMessage.Assistant(chosen)];
        bool hasSystem = history.Count > 0 && history[0]?.Role == ChatRole.System;
        var exchangeStarts = SftExampleBuilder.ExchangeStarts(conversation, hasSystem ? 1 : 0);
        for (int dropped = 0; ; dropped++)
        {
            IReadOnlyList<ChatMessage> kept = dropped == 0 ? history : SftExampleBuilder.Keep(conversation, hasSystem, exchangeStarts[dropped])[..^1];
            try
            {
                return Pair(sides.BuildGenerationPrompt(kept),
                    () => sides.Build([.. kept, ChatMessage.Assistant(chosen)]),
                    () => sides.Build([.. kept, ChatMessage.Assistant(rejected)]));
            }
            catch (SftExampleException e) when (e.Reason == SftRejection.TooLong
                && Options.Truncation == TruncationPolicy.DropOldestTurns && dropped + 1 < exchangeStarts.Count)
            {
                // Both sides drop the same exchanges, so their prompts stay identical.
            }
            catch (SftExampleException e) when (e.Reason == SftRejection.TooLong && Options.Truncation == TruncationPolicy.DropOldestTurns)
            {
                throw new SftExampleException(SftRejection.TooLong,
                    $"{e.Message} No whole exchange is left to drop{(dropped > 0 ? $" after dropping the {dropped} oldest" : "")}; raise MaxLength or shorten the last exchange.");
            }
        }
    }

    /// <summary>
    /// Builds the pair of two conversations that share everything but the last assistant answer, the layout of most
    /// preference data sets ("chosen" and "rejected" message lists).
    /// </summary>
    /// <exception cref="ArgumentException">A conversation is empty or does not end with an assistant message, the prompts (all messages before the last) differ, or as for <see cref="Build(IReadOnlyList{ChatMessage}, string, string)"/>.</exception>
    /// <exception cref="SftExampleException">The pair cannot fit (<see cref="SftRejection.TooLong"/>).</exception>
    public PreferencePair Build(IReadOnlyList<ChatMessage> chosenConversation, IReadOnlyList<ChatMessage> rejectedConversation)
    {
        var chosen = LastAnswer(chosenConversation, nameof(chosenConversation));
        var rejected = LastAnswer(rejectedConversation, nameof(rejectedConversation));
        int shared = Math.Min(chosenConversation.Count, rejectedConversation.Count) - 1;
        int differ = Enumerable.Range(0, shared).FirstOrDefault(i => !Equals(chosenConversation[i], rejectedConversation[i]), -1);
        if (differ >= 0)
            throw new ArgumentException(
                $"The prompts differ at message {differ}: chosen has {Describe(chosenConversation[differ])}, rejected {Describe(rejectedConversation[differ])}. A pair needs two answers to the same conversation.",
                nameof(rejectedConversation));
        if (chosenConversation.Count != rejectedConversation.Count)
            throw new ArgumentException(
                $"The prompts differ in length: the chosen answer follows {chosenConversation.Count - 1} messages, the rejected one {rejectedConversation.Count - 1}. A pair needs two answers to the same conversation.",
                nameof(rejectedConversation));
        return Build(chosenConversation.Take(shared).ToList(), chosen, rejected);
    }

    /// <summary>
    /// Builds the pair of two completions of a raw prompt (no role headers), as <see cref="SftExampleBuilder.Build(string, string)"/>:
    /// <c>BeginningOfSequence + prompt + answer + EndOfTurn</c>. There are no turns to drop, so a pair that does not fit is
    /// rejected unless the policy is <see cref="TruncationPolicy.KeepStart"/>.
    /// </summary>
    /// <exception cref="ArgumentException">An answer is null or empty, or the prompt or an answer is null or contains the end-of-turn marker.</exception>
    /// <exception cref="SftExampleException">The pair cannot fit (<see cref="SftRejection.TooLong"/>).</exception>
    public PreferencePair Build(string prompt, string chosen, string rejected)
    {
        CheckAnswer(chosen, nameof(chosen));
        CheckAnswer(rejected, nameof(rejected));
        return Pair(sides.BuildGenerationPrompt(prompt), () => sides.Build(prompt, chosen), () => sides.Build(prompt, rejected));
    }

    /// <summary>Builds both sides and checks the invariant the whole type exists for: both start with the generation prompt's ids.</summary>
    private PreferencePair Pair(int[] promptIds, Func<SftExample> chosen, Func<SftExample> rejected)
    {
        var pair = new PreferencePair(Side(chosen, "chosen", promptIds.Length), Side(rejected, "rejected", promptIds.Length));
        if (!pair.PromptIds.AsSpan().SequenceEqual(promptIds))
            throw new InvalidOperationException(
                $"The pair's {pair.PromptLength} prompt tokens are not the {promptIds.Length} tokens of its generation prompt; the tokenizer is not deterministic on these segments.");
        return pair;
    }

    /// <summary>One side; a cut that leaves no answer token is "cannot fit", not "no trained tokens", since the answer is not empty.</summary>
    private SftExample Side(Func<SftExample> build, string side, int promptLength)
    {
        try
        {
            return build();
        }
        catch (SftExampleException e) when (e.Reason == SftRejection.TooLong)
        {
            // The side builder never drops turns (the pair does), so its "policy Error" is not the user's policy.
            throw new SftExampleException(SftRejection.TooLong,
                $"The pair cannot fit: its {side} side is longer than MaxLength = {Options.MaxLength} tokens ({e.Message.Replace(" (truncation policy Error)", "", StringComparison.Ordinal)}).");
        }
        catch (SftExampleException e) when (e.Reason == SftRejection.NoTrainedTokens)
        {
            throw new SftExampleException(SftRejection.TooLong,
                $"The {side} side cannot fit: its prompt has {promptLength} tokens, so MaxLength = {Options.MaxLength} leaves no answer token.");
        }
    }

    private static string LastAnswer(IReadOnlyList<ChatMessage> conversation, string name)
    {
        ArgumentNullException.ThrowIfNull(conversation, name);
        if (conversation.Count == 0 || conversation[^1]?.Role != ChatRole.Assistant)
            throw new ArgumentException($"{name} must end with the assistant answer being compared; it {(conversation.Count == 0 ? "is empty" : $"ends with a {conversation[^1]?.Role.ToString().ToLowerInvariant() ?? "null"} message")}.", name);
        return conversation[^1].Content;
    }

    private static void CheckAnswer(string answer, string name)
    {
        if (string.IsNullOrEmpty(answer))
            throw new ArgumentException(
                $"The {name} answer is {(answer is null ? "null" : "empty")}: only its end-of-turn marker would be scored, so the pair would compare two stops.", name);
    }

    private static string Describe(ChatMessage? message) =>
        message is null ? "null" : $"a {message.Role.ToString().ToLowerInvariant()} message \"{CharTokenizer.Escape(message.Content ?? "")}\"";
}
