using TorchLoss;

namespace Preference;

/// <summary>One preference loss of the experiment: its name in the table and its options.</summary>
/// <param name="Name">Shown in the table, the log and the chart.</param>
/// <param name="Options">The loss and its parameters.</param>
public sealed record LossSetting(string Name, PreferenceOptions Options)
{
    /// <summary>
    /// DPO with TRL's β = 0.1 on summed log-probabilities; SimPO with β = 2 and γ = 1 (γ/β = ½, in the range the paper
    /// tunes) on mean log-probabilities; ORPO with λ = 0.1 (the paper's and TRL's value), β = 0.1 only scaling its logged rewards.
    /// </summary>
    public static IReadOnlyList<LossSetting> All { get; } =
    [
        new("DPO", new PreferenceOptions { Loss = PreferenceLossKind.Dpo, Beta = 0.1 }),
        new("SimPO", new PreferenceOptions { Loss = PreferenceLossKind.SimPo, Beta = 2.0, Gamma = 1.0 }),
        new("ORPO", new PreferenceOptions { Loss = PreferenceLossKind.Orpo, Beta = 0.1, Lambda = 0.1 }),
    ];

    /// <summary>Whether the loss compares the policy with the reference model.</summary>
    public bool NeedsReference => Options.Loss is not (PreferenceLossKind.SimPo or PreferenceLossKind.Orpo);
}
