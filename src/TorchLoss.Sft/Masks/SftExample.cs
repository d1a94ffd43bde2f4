namespace TorchLoss.Sft;

/// <summary>
/// One tokenized training example. <c>Labels[i] == InputIds[i]</c> where token i is trained and
/// <see cref="IgnoreIndex"/> elsewhere. Labels are unshifted: a causal <see cref="TokenCrossEntropy"/> pairs the logits at
/// position t with the label at t+1, so shifting here as well would train on the next-next token.
/// </summary>
/// <remarks>
/// The constructor enforces what the loss relies on: equal lengths of at least 2, every label either ignored
/// or equal to its token, position 0 ignored (no token precedes it, so nothing can predict it) and at least
/// one trained token (an all-ignored row contributes nothing, and a batch of them divides zero by zero).
/// </remarks>
public sealed record SftExample(int[] InputIds, long[] Labels)
{
    /// <summary>The label of a token that is not trained; matches <see cref="CrossEntropyOptions.IgnoreIndex"/>'s default.</summary>
    public const long IgnoreIndex = LossDefaults.IgnoreIndex;

    /// <summary>The token ids.</summary>
    public int[] InputIds { get; } = CheckIds(InputIds);

    /// <summary>Per token, its id where it is trained and <see cref="IgnoreIndex"/> elsewhere.</summary>
    public long[] Labels { get; } = CheckLabels(InputIds, Labels);

    /// <summary>How many tokens are trained: exactly the tokens a causal <see cref="TokenCrossEntropy"/> counts for this row.</summary>
    public int TrainedTokenCount { get; } = Labels.Count(l => l != IgnoreIndex);

    /// <summary>The number of tokens.</summary>
    public int Length => InputIds.Length;

    /// <summary>Whether token <paramref name="index"/> is trained.</summary>
    public bool IsTrained(int index) => Labels[index] != IgnoreIndex;

    /// <summary>
    /// The maximal runs of consecutive trained tokens, in order: typically one per trained assistant turn.
    /// Decode <c>InputIds[run]</c> to see exactly what the model is taught to write.
    /// </summary>
    public IReadOnlyList<Range> TrainedRuns()
    {
        var runs = new List<Range>();
        int i = 0;
        while (i < Labels.Length)
        {
            if (!IsTrained(i)) { i++; continue; }
            int start = i;
            while (i < Labels.Length && IsTrained(i)) i++;
            runs.Add(start..i);
        }
        return runs;
    }

    private static int[] CheckIds(int[] inputIds)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        if (inputIds.Length < 2)
            throw new ArgumentException($"An example needs at least 2 tokens (one to predict the next from), got {inputIds.Length}.", nameof(InputIds));
        int negative = Array.FindIndex(inputIds, id => id < 0);
        if (negative >= 0)
            throw new ArgumentException($"Token ids must be non-negative, got {inputIds[negative]} at position {negative}.", nameof(InputIds));
        return inputIds;
    }

    private static long[] CheckLabels(int[] inputIds, long[] labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        if (labels.Length != inputIds.Length)
            throw new ArgumentException($"Labels ({labels.Length}) and input ids ({inputIds.Length}) must have the same length.", nameof(Labels));
        if (labels[0] != IgnoreIndex)
            throw new ArgumentException($"The label at position 0 must be {IgnoreIndex}: no token precedes it, so nothing predicts it (got {labels[0]}).", nameof(Labels));
        int trained = 0;
        for (int i = 0; i < labels.Length; i++)
        {
            if (labels[i] == IgnoreIndex) continue;
            if (labels[i] != inputIds[i])
                throw new ArgumentException($"Labels are unshifted: labels[{i}] must be {inputIds[i]} (the token itself) or {IgnoreIndex}, got {labels[i]}.", nameof(Labels));
            trained++;
        }
        if (trained == 0)
            throw new SftExampleException(SftRejection.NoTrainedTokens, $"All {labels.Length} labels are {IgnoreIndex}: the example trains nothing.");
        return labels;
    }
}
