using TinyGpt;
using TorchLoss.Sft;
using static TorchSharp.torch;

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
        var generated = new string[prompts.Count];
        // Sorted by length so each chunk pads little.
        var order = Enumerable.Range(0, prompts.Count).OrderBy(i => prompts[i].Ids.Length).ToArray();
        foreach (var chunk in order.Chunk(64))
        {
            var continuations = GreedyContinuations(model, chunk.Select(i => prompts[i].Ids).ToList(), NewTokens);
            for (int row = 0; row < chunk.Length; row++)
                generated[chunk[row]] = tokenizer.Decode(continuations[row]);
        }

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
    /// Greedy continuations of prompts of different lengths in one batch: rows are padded on the right and
    /// each row reads the logits at its own last token. Under a causal mask the padding after a row's tokens
    /// never changes what those tokens see, so this equals decoding each prompt alone.
    /// </summary>
    public static List<int[]> GreedyContinuations(Gpt model, IReadOnlyList<int[]> prompts, int newTokens)
    {
        bool wasTraining = model.training;
        model.eval();
        try
        {
            using var noGrad = no_grad();
            using var scope = NewDisposeScope();
            int rows = prompts.Count;
            int width = prompts.Max(p => p.Length) + newTokens;
            if (width > model.Config.ContextLength)
                throw new ArgumentException($"A prompt of {prompts.Max(p => p.Length)} tokens plus {newTokens} new ones exceeds the context of {model.Config.ContextLength}.", nameof(prompts));
            var buffer = new long[rows * width];
            var lengths = prompts.Select(p => p.Length).ToArray();
            for (int r = 0; r < rows; r++)
                for (int t = 0; t < prompts[r].Length; t++)
                    buffer[r * width + t] = prompts[r][t];
            var output = prompts.Select(_ => new int[newTokens]).ToList();
            for (int step = 0; step < newTokens; step++)
            {
                using var stepScope = NewDisposeScope();
                int used = lengths.Max();
                var ids = tensor(buffer, [rows, width], ScalarType.Int64)[.., ..used];
                var last = tensor(lengths.Select(l => (long)l - 1).ToArray(), ScalarType.Int64);
                var logits = model.forward(ids)[arange(rows, ScalarType.Int64), last];
                var next = logits.argmax(-1).data<long>().ToArray();
                for (int r = 0; r < rows; r++)
                {
                    buffer[r * width + lengths[r]] = next[r];
                    output[r][step] = (int)next[r];
                    lengths[r]++;
                }
            }
            return output;
        }
        finally
        {
            model.train(wasTraining);
        }
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
