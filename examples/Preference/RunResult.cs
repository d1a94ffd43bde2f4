namespace Preference;

/// <summary>One preference run: its loss, the held-out measurements from step 0 (the SFT model) to the last step, and its wall time.</summary>
/// <param name="Loss">The loss trained with.</param>
/// <param name="Curve">Held-out measurements in step order; the first is before training, the last after.</param>
/// <param name="TrainedPairs">The same measurements on (up to 256 of) the training pairs, before and after: what the policy learned on the pairs it saw.</param>
/// <param name="Seconds">Training and measuring wall time.</param>
public sealed record RunResult(LossSetting Loss, IReadOnlyList<Measurement> Curve, (Measurement Before, Measurement After) TrainedPairs, double Seconds)
{
    /// <summary>The SFT model, measured with this loss's rewards.</summary>
    public Measurement Before => Curve[0];

    /// <summary>The tuned policy.</summary>
    public Measurement After => Curve[^1];
}
