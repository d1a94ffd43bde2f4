namespace TorchLoss.Sft;

/// <summary>How <see cref="PreferencePairBuilder"/> makes pairs: how long each side may be and what to do when one is longer.</summary>
public sealed record PreferencePairOptions
{
    /// <summary>The most tokens each side (prompt + answer + end-of-turn) may have; at least 2.</summary>
    public required int MaxLength { get; init; }

    /// <summary>
    /// What to do when a side is longer than <see cref="MaxLength"/>; <see cref="TruncationPolicy.DropOldestTurns"/> by
    /// default. Whatever the policy, both sides keep the same prompt: <see cref="TruncationPolicy.DropOldestTurns"/>
    /// drops the same whole exchanges from both until the longer side fits; <see cref="TruncationPolicy.KeepStart"/>
    /// cuts each answer at <see cref="MaxLength"/> (a cut answer's end-of-turn marker is not scored); <see cref="TruncationPolicy.Error"/> rejects the pair.
    /// </summary>
    public TruncationPolicy Truncation { get; init; } = TruncationPolicy.DropOldestTurns;

    /// <summary>Throws when a value is out of range.</summary>
    /// <exception cref="ArgumentException">An option is invalid.</exception>
    public void Validate() => SideOptions.Validate();

    /// <summary>
    /// The options of the <see cref="SftExampleBuilder"/> that builds each side: only the last answer and its end-of-turn
    /// marker trained; dropping turns is done for both sides together, so each side alone only fits, cuts or fails.
    /// </summary>
    internal SftOptions SideOptions => new()
    {
        TrainOn = AssistantTurns.Last,
        TrainEndOfTurn = true,
        MaxLength = MaxLength,
        Truncation = Truncation == TruncationPolicy.DropOldestTurns ? TruncationPolicy.Error : Truncation,
    };
}
