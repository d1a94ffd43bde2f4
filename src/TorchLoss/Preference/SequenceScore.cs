namespace TorchLoss;

/// <summary>Which per-sequence log-probability a preference loss compares.</summary>
public enum SequenceScore
{
    /// <summary>Σ log p over the answer's tokens (<see cref="SequenceLogProbs.Sum"/>): the sequence's log-likelihood, as in DPO.</summary>
    Sum,

    /// <summary>Σ log p divided by the answer's token count (<see cref="SequenceLogProbs.Mean"/>): length-normalised, as in SimPO and ORPO.</summary>
    Mean,
}
