namespace TorchLoss;

/// <summary>Which divergence between the teacher's distribution P and the student's Q a <see cref="DistillationLoss"/> minimises.</summary>
public enum DistillationDivergence
{
    /// <summary>
    /// KL(P‖Q), Hinton et al.'s distillation loss: mean-seeking, the student must cover every token the teacher
    /// allows. Finite whenever the student gives every such token some mass, so a teacher with −∞ logits is fine.
    /// </summary>
    Forward,

    /// <summary>
    /// KL(Q‖P): mode-seeking, the student may drop modes of the teacher. Infinite when the teacher rules out a token
    /// (a −∞ logit) that the student's softmax necessarily gives some mass.
    /// </summary>
    Reverse,

    /// <summary>
    /// The generalised Jensen–Shannon divergence β·KL(P‖M) + (1−β)·KL(Q‖M) with M = β·P + (1−β)·Q and
    /// β = <see cref="DistillationOptions.Beta"/>: bounded and finite for any pair; 0 at β = 0 and β = 1.
    /// </summary>
    JensenShannon,
}
