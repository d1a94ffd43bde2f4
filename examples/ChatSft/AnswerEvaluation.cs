using TinyGpt;
using TorchLoss.Sft;

namespace ChatSft;

/// <summary>
/// Asks a model the last question of each held-out conversation (earlier turns as history), decodes greedily
/// past the end-of-turn marker, and scores: exact match, whether it stopped at the marker, and whether it
/// went on to write a "User:" turn, which is what a model that learned "to be a user" does.
/// </summary>
public static class AnswerEvaluation
{
    /// <summary>Tokens generated per prompt: the longest answer, the end-of-turn marker and room for "User:".</summary>
    public const int NewTokens = SyntheticChats.MaxAnswerLength + 8;

    /// <summary>Scores <paramref name="model"/> on <paramref name="conversations"/>, prompting it exactly as <paramref name="builder"/> trained it.</summary>
    public static AnswerScore Evaluate(Gpt model, SftExampleBuilder builder, IReadOnlyList<ChatMessage[]> conversations, int samplesToShow)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(builder);
        var (tokenizer, template) = (builder.Tokenizer, builder.Template);
        var prompts = conversations.Select(c => Prompt(builder, c, model.Config.ContextLength - NewTokens)).ToList();
        var generated = GreedyDecoding.ContinueAll(model, prompts.Select(p => p.Ids).ToList(), NewTokens).Select(tokenizer.Decode).ToArray();

        int exact = 0, stops = 0, userTurns = 0;
        var samples = new List<(string, string, string)>();
        for (int i = 0; i < prompts.Count; i++)
        {
            var text = generated[i];
            int end = text.IndexOf(template.EndOfTurn, StringComparison.Ordinal);
            bool stopped = end >= 0 && end <= SyntheticChats.MaxAnswerLength;
            if (stopped) stops++;
            if (stopped && text[..end] == prompts[i].Expected) exact++;
            if (text.Contains(template.UserHeader.TrimEnd(), StringComparison.Ordinal)) userTurns++;
            if (samples.Count < samplesToShow)
                samples.Add((prompts[i].Question, prompts[i].Expected, text));
        }
        return new AnswerScore(prompts.Count, exact, stops, userTurns, samples);
    }

    /// <summary>
    /// The generation prompt for the conversation's last answer, dropping the oldest exchanges until it fits.
    /// Its ids come from the builder, never from encoding the rendered prompt in one piece, so they are the
    /// ids training put before that answer.
    /// </summary>
    public static (int[] Ids, string Expected, string Question) Prompt(SftExampleBuilder builder, ChatMessage[] conversation, int maxTokens)
    {
        var history = conversation[..^1];
        while (true)
        {
            var ids = builder.BuildGenerationPrompt(history);
            if (ids.Length <= maxTokens || history.Length <= 1)
                return (ids[Math.Max(0, ids.Length - maxTokens)..], conversation[^1].Content, conversation[^2].Content);
            history = history[2..];
        }
    }
}
