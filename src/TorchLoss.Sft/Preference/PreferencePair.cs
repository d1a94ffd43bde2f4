namespace TorchLoss.Sft;

/// <summary>
/// One preference pair: the chosen and the rejected answer to the same prompt, each an <see cref="SftExample"/> whose
/// trained labels are exactly the answer and its end-of-turn marker. Both sides start with the same
/// <see cref="PromptLength"/> prompt tokens, the ids a model is given to generate the answer.
/// </summary>
/// <remarks>
/// The constructor enforces what a preference loss relies on: each side has exactly one run of trained tokens (the
/// answer; earlier assistant turns are prompt), both runs start at the same position, and the tokens before it are
/// identical. A pair whose prompts differ would compare answers to different questions, and the reference model's
/// ratio would not cancel the prompt.
/// </remarks>
public sealed class PreferencePair
{
    /// <summary>Creates a pair from two examples, e.g. from <see cref="SftExampleBuilder"/> with <see cref="AssistantTurns.Last"/>.</summary>
    /// <param name="chosen">The preferred answer's example.</param>
    /// <param name="rejected">The other answer's example.</param>
    /// <exception cref="ArgumentException">A side does not train exactly one run of tokens, or the two prompts (the tokens before the runs) differ.</exception>
    public PreferencePair(SftExample chosen, SftExample rejected)
    {
        ArgumentNullException.ThrowIfNull(chosen);
        ArgumentNullException.ThrowIfNull(rejected);
        int chosenPrompt = PromptLengthOf(chosen, nameof(chosen));
        int rejectedPrompt = PromptLengthOf(rejected, nameof(rejected));
        int shared = Math.Min(chosenPrompt, rejectedPrompt);
        int differ = Enumerable.Range(0, shared).FirstOrDefault(i => chosen.InputIds[i] != rejected.InputIds[i], -1);
        if (differ >= 0)
            throw new ArgumentException(
                $"The prompts differ at token {differ} (chosen id {chosen.InputIds[differ]}, rejected id {rejected.InputIds[differ]}): both answers must follow the same prompt tokens.",
                nameof(rejected));
        if (chosenPrompt != rejectedPrompt)
            throw new ArgumentException(
                $"The prompts differ in length: the chosen answer starts after {chosenPrompt} tokens, the rejected one after {rejectedPrompt}; both answers must follow the same prompt tokens.",
                nameof(rejected));
        Chosen = chosen;
        Rejected = rejected;
        PromptLength = chosenPrompt;
    }

    /// <summary>The chosen answer: prompt then answer; trained labels on the answer and its end-of-turn marker.</summary>
    public SftExample Chosen { get; }

    /// <summary>The rejected answer, after the same prompt tokens.</summary>
    public SftExample Rejected { get; }

    /// <summary>How many tokens both sides share before the answer; the first trained label of each side is at this position.</summary>
    public int PromptLength { get; }

    /// <summary>The shared prompt tokens (a copy).</summary>
    public int[] PromptIds => Chosen.InputIds[..PromptLength];

    private static int PromptLengthOf(SftExample side, string name)
    {
        var runs = side.TrainedRuns();
        if (runs.Count != 1)
            throw new ArgumentException(
                $"The {name} example trains {runs.Count} runs of tokens; a preference answer is one run (the last assistant answer and its end-of-turn marker). Build it with AssistantTurns.Last.",
                name);
        return runs[0].Start.Value;
    }
}
