namespace TinyGpt;

/// <summary>
/// Running sums of a <see cref="TorchLoss.DistillationLoss"/>'s totals over counted positions, in nats: the teacher's entropy,
/// the model's cross-entropy against the teacher and their difference, the KL divergence (CE = H + KL).
/// </summary>
/// <param name="TeacherEntropySum">Σ H(teacher).</param>
/// <param name="CrossEntropySum">Σ H(teacher, model).</param>
/// <param name="KlDivergenceSum">Σ KL(teacher‖model).</param>
/// <param name="Positions">Counted positions.</param>
public sealed record DistillationTotals(double TeacherEntropySum, double CrossEntropySum, double KlDivergenceSum, long Positions)
{
    /// <summary>Nothing counted yet.</summary>
    public static DistillationTotals Zero { get; } = new(0, 0, 0, 0);

    /// <summary>Mean teacher entropy per position.</summary>
    public double TeacherEntropy => TeacherEntropySum / Positions;

    /// <summary>Mean cross-entropy per position.</summary>
    public double CrossEntropy => CrossEntropySum / Positions;

    /// <summary>Mean KL divergence per position.</summary>
    public double KlDivergence => KlDivergenceSum / Positions;

    /// <summary>The sums of both.</summary>
    public DistillationTotals Add(DistillationTotals other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return new(TeacherEntropySum + other.TeacherEntropySum, CrossEntropySum + other.CrossEntropySum, KlDivergenceSum + other.KlDivergenceSum, Positions + other.Positions);
    }
}
