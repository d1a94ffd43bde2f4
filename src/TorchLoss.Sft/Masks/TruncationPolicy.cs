namespace TorchLoss.Sft;

/// <summary>What <see cref="SftExampleBuilder"/> does with a conversation longer than <see cref="SftOptions.MaxLength"/> tokens.</summary>
public enum TruncationPolicy
{
    /// <summary>
    /// Removes whole user/assistant exchanges, oldest first, keeping the system message, until the
    /// conversation fits. The model never sees half a turn. When even the last exchange does not fit the
    /// conversation is rejected (<see cref="SftRejection.TooLong"/>).
    /// </summary>
    DropOldestTurns,

    /// <summary>
    /// Keeps the first <see cref="SftOptions.MaxLength"/> tokens. A turn cut short keeps its trained
    /// content but never a trained end-of-turn marker, so the model is not taught to stop mid-answer.
    /// </summary>
    KeepStart,

    /// <summary>Rejects the conversation (<see cref="SftRejection.TooLong"/>).</summary>
    Error,
}
