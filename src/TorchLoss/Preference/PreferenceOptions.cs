using TorchSharp;

namespace TorchLoss;

/// <summary>
/// Options of <see cref="PreferenceLoss"/>, fixed when the module is constructed. A parameter that belongs to
/// another loss kind is rejected rather than ignored, so a configuration never silently means something else.
/// </summary>
public sealed record PreferenceOptions
{
    /// <summary>Which loss; <see cref="PreferenceLossKind.Dpo"/> by default.</summary>
    public PreferenceLossKind Loss { get; init; } = PreferenceLossKind.Dpo;

    /// <summary>The temperature β &gt; 0 on the log-probability differences (for ORPO only on the logged rewards); 0.1 by default, as in TRL.</summary>
    public double Beta { get; init; } = 0.1;

    /// <summary>
    /// The label-flip probability ε: in [0, ½] for <see cref="PreferenceLossKind.Dpo"/> (conservative DPO; ½ makes
    /// the loss symmetric and its gradient 0) and in [0, ½) for <see cref="PreferenceLossKind.RobustDpo"/>. Other kinds take 0 only.
    /// </summary>
    public double LabelSmoothing { get; init; }

    /// <summary>SimPO's target margin γ ≥ 0 (in units of the reward, i.e. after β); <see cref="PreferenceLossKind.SimPo"/> only, 0 when unset.</summary>
    public double? Gamma { get; init; }

    /// <summary>The weight α ≥ 0 of the chosen answer's mean NLL added to SimPO (CPO's behaviour-cloning term); <see cref="PreferenceLossKind.SimPo"/> only, 0 when unset.</summary>
    public double? Alpha { get; init; }

    /// <summary>ORPO's weight λ &gt; 0 on the odds-ratio term; <see cref="PreferenceLossKind.Orpo"/> only, 0.1 when unset (the paper's and TRL's value).</summary>
    public double? Lambda { get; init; }

    /// <summary>
    /// Which per-sequence log-probability the loss compares; null (default) takes the published one: the sum for DPO,
    /// hinge and robust DPO, the mean for IPO (as TRL), SimPO and ORPO. DPO, hinge, robust DPO and IPO accept either;
    /// SimPO and ORPO are defined on the mean and accept only it.
    /// </summary>
    public SequenceScore? Score { get; init; }

    /// <summary>How per-pair losses are combined: mean over pairs (default), sum, or none (one loss per pair).</summary>
    public torch.nn.Reduction Reduction { get; init; } = torch.nn.Reduction.Mean;

    /// <summary>The label value that is not scored.</summary>
    public long IgnoreIndex { get; init; } = LossDefaults.IgnoreIndex;

    /// <summary>Which implementation computes the per-token log-probabilities from logits; see <see cref="CrossEntropyBackend"/>.</summary>
    public CrossEntropyBackend Backend { get; init; } = CrossEntropyBackend.Auto;

    /// <summary>DPO with β = 0.1, summed log-probabilities, mean over pairs.</summary>
    public static PreferenceOptions Default { get; } = new();

    /// <summary>The score the loss compares: <see cref="Score"/>, or the loss kind's published one.</summary>
    internal SequenceScore ResolvedScore => Score ?? (Loss is PreferenceLossKind.Dpo or PreferenceLossKind.Hinge or PreferenceLossKind.RobustDpo
        ? SequenceScore.Sum
        : SequenceScore.Mean);

    /// <summary>Whether the loss compares against a reference model (every kind but SimPO and ORPO).</summary>
    internal bool NeedsReference => Loss is not (PreferenceLossKind.SimPo or PreferenceLossKind.Orpo);

    internal double ResolvedGamma => Gamma ?? 0;

    internal double ResolvedAlpha => Alpha ?? 0;

    internal double ResolvedLambda => Lambda ?? 0.1;

    internal void Validate()
    {
        if (!Enum.IsDefined(Loss))
            throw new ArgumentException($"Unknown preference loss {Loss}.", nameof(Loss));
        if (!(Beta > 0) || double.IsInfinity(Beta))
            throw new ArgumentException($"Beta must be a finite value > 0, got {Beta}.", nameof(Beta));
        ValidateLabelSmoothing();
        CheckOnlyFor(Gamma, nameof(Gamma), PreferenceLossKind.SimPo, positive: false);
        CheckOnlyFor(Alpha, nameof(Alpha), PreferenceLossKind.SimPo, positive: false);
        CheckOnlyFor(Lambda, nameof(Lambda), PreferenceLossKind.Orpo, positive: true);
        if (Score is { } score)
        {
            if (!Enum.IsDefined(score))
                throw new ArgumentException($"Unknown sequence score {score}.", nameof(Score));
            if (score == SequenceScore.Sum && !NeedsReference)
                throw new ArgumentException($"{Loss} is defined on mean (length-normalised) log-probabilities; Score = Sum would make it another loss.", nameof(Score));
        }
        if (!Enum.IsDefined(Reduction))
            throw new ArgumentException($"Unknown reduction {Reduction}.", nameof(Reduction));
        if (!Enum.IsDefined(Backend))
            throw new ArgumentException($"Unknown cross-entropy backend {Backend}.", nameof(Backend));
    }

    private void ValidateLabelSmoothing()
    {
        double e = LabelSmoothing;
        switch (Loss)
        {
            case PreferenceLossKind.Dpo when double.IsNaN(e) || e < 0 || e > 0.5:
                throw new ArgumentException($"LabelSmoothing (the label-flip probability of conservative DPO) must be in [0, 0.5], got {e}.", nameof(LabelSmoothing));
            case PreferenceLossKind.RobustDpo when double.IsNaN(e) || e < 0 || e >= 0.5:
                throw new ArgumentException($"LabelSmoothing of robust DPO must be in [0, 0.5): it divides by 1 − 2ε, got {e}.", nameof(LabelSmoothing));
            case not (PreferenceLossKind.Dpo or PreferenceLossKind.RobustDpo) when e != 0:
                throw new ArgumentException($"LabelSmoothing applies to Dpo and RobustDpo only, not {Loss}; got {e}.", nameof(LabelSmoothing));
        }
    }

    private void CheckOnlyFor(double? value, string name, PreferenceLossKind kind, bool positive)
    {
        if (value is not { } v) return;
        if (Loss != kind)
            throw new ArgumentException($"{name} is a parameter of {kind} only, but the loss is {Loss}; leave it unset.", name);
        bool valid = positive ? v > 0 && !double.IsInfinity(v) : v >= 0 && !double.IsInfinity(v);
        if (!valid)
            throw new ArgumentException($"{name} must be a finite value {(positive ? ">" : "≥")} 0, got {v}.", name);
    }
}
