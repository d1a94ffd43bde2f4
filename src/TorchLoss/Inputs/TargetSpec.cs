namespace TorchLoss;

/// <summary>
/// What <see cref="TargetPreparation.Prepare"/> needs to know about one call: how the inputs are named in messages,
/// how many classes there are, and which targets count. Each family builds it from its own options, so the shared
/// preparation never sees an option record of a family.
/// </summary>
internal sealed record TargetSpec
{
    /// <summary>The name of the scored input in messages ("logits", "hidden").</summary>
    public required string ScoresName { get; init; }

    /// <summary>The name of the target in messages ("target", "labels").</summary>
    public required string TargetName { get; init; }

    /// <summary>The number of classes C the targets index.</summary>
    public required long Classes { get; init; }

    /// <summary>Where <see cref="Classes"/> comes from, for messages (e.g. "logits shape [2, 3, 5]").</summary>
    public required string ClassesFrom { get; init; }

    /// <summary>The target value that is not counted.</summary>
    public long IgnoreIndex { get; init; } = LossDefaults.IgnoreIndex;

    /// <summary>Position t is scored against target t+1 (targets [B, T], unshifted); the last position is never counted.</summary>
    public bool Causal { get; init; }

    /// <summary>A floating target with the scores' shape is a distribution per position (soft targets).</summary>
    public bool AllowSoft { get; init; }

    /// <summary>Check soft targets are distributions on every counted position (reads a value back).</summary>
    public bool CheckSoftTargets { get; init; } = true;

    /// <summary>Check target values also on accelerators, where the check waits for the device.</summary>
    public bool CheckOnAccelerator { get; init; }

    /// <summary>Class weights, already checked against <see cref="Classes"/>, or null.</summary>
    public double[]? ClassWeights { get; init; }

    /// <summary>The loss divides by Σ w[target] (a weighted mean with no normaliser), so that sum must not be 0.</summary>
    public bool DividesByWeightSum { get; init; }
}
