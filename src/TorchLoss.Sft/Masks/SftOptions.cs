namespace TorchLoss.Sft;

/// <summary>How <see cref="SftExampleBuilder"/> turns conversations into training examples.</summary>
public sealed record SftOptions
{
    /// <summary>Which assistant turns are trained; <see cref="AssistantTurns.All"/> by default.</summary>
    public AssistantTurns TrainOn { get; init; } = AssistantTurns.All;

    /// <summary>
    /// Whether the end-of-turn marker after each trained assistant turn is trained (default true).
    /// Without it the model never learns to stop and rambles on into the next turn.
    /// </summary>
    public bool TrainEndOfTurn { get; init; } = true;

    /// <summary>The most tokens an example may have (at least 2: a causal LM predicts token t+1 from token t).</summary>
    public required int MaxLength { get; init; }

    /// <summary>What to do with a longer conversation; <see cref="TruncationPolicy.DropOldestTurns"/> by default.</summary>
    public TruncationPolicy Truncation { get; init; } = TruncationPolicy.DropOldestTurns;

    /// <summary>Throws when a value is out of range.</summary>
    /// <exception cref="ArgumentException">An option is invalid.</exception>
    public void Validate()
    {
        if (MaxLength < 2)
            throw new ArgumentException($"{nameof(MaxLength)} must be at least 2 tokens, got {MaxLength}.", nameof(MaxLength));
        if (!Enum.IsDefined(TrainOn))
            throw new ArgumentException($"{nameof(TrainOn)} has the unknown value {(int)TrainOn}.", nameof(TrainOn));
        if (!Enum.IsDefined(Truncation))
            throw new ArgumentException($"{nameof(Truncation)} has the unknown value {(int)Truncation}.", nameof(Truncation));
    }
}
