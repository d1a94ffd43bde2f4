namespace TorchLoss;

/// <summary>
/// The preference losses of <see cref="PreferenceLoss"/>. With π the policy's and π_ref the reference model's
/// per-sequence log-probabilities (see <see cref="SequenceScore"/>) of the chosen (c) and rejected (r) answers,
/// h = (π_c − π_ref,c) − (π_r − π_ref,r) and σ the logistic function. Per pair:
/// </summary>
public enum PreferenceLossKind
{
    /// <summary>
    /// DPO (Rafailov et al. 2023), the sigmoid form: −(1−ε)·log σ(βh) − ε·log σ(−βh), with ε the label-flip probability
    /// of conservative DPO (<see cref="PreferenceOptions.LabelSmoothing"/>, 0 by default). Sums by default.
    /// </summary>
    Dpo,

    /// <summary>The hinge loss of SLiC (Zhao et al. 2023) as TRL writes it: max(0, 1 − βh). Sums by default.</summary>
    Hinge,

    /// <summary>
    /// IPO (Azar et al. 2023): (h − 1/(2β))². Mean log-probabilities by default, as TRL computes it (the paper's ratios
    /// are of whole sequences; ask for <see cref="SequenceScore.Sum"/> to get them).
    /// </summary>
    Ipo,

    /// <summary>
    /// Robust DPO (Chowdhury et al. 2024), unbiased under preference labels flipped with probability ε &lt; ½:
    /// ((1−ε)·(−log σ(βh)) + ε·log σ(−βh)) / (1−2ε). Sums by default.
    /// </summary>
    RobustDpo,

    /// <summary>
    /// SimPO (Meng et al. 2024), reference-free and length-normalised: −log σ(β·m_c − β·m_r − γ) + α·(−m_c), m the mean
    /// log-probability, γ the margin <see cref="PreferenceOptions.Gamma"/> and α the weight of the chosen answer's NLL
    /// (CPO's term, <see cref="PreferenceOptions.Alpha"/>, 0 by default).
    /// </summary>
    SimPo,

    /// <summary>
    /// ORPO (Hong et al. 2024), reference-free: −m_c − λ·log σ(log odds(m_c) − log odds(m_r)), m the mean log-probability,
    /// log odds(m) = m − log(1 − e^m) and λ <see cref="PreferenceOptions.Lambda"/>. β only scales the logged rewards β·m.
    /// </summary>
    Orpo,
}
