using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss;

/// <summary>
/// Validated, flattened targets of one loss call, as <see cref="TargetPreparation.Prepare"/> makes them for every
/// module: row n of the flattened scores [N, ...] is scored against <see cref="Target"/>[n] where <see cref="Counted"/>[n].
/// </summary>
/// <param name="Target">Class indices [N] (int64), or per-row distributions [N, C] (floating) for soft targets.</param>
/// <param name="Counted">Bool [N]: the row contributes to the loss.</param>
/// <param name="ClassWeights">The options' class weights, checked against C, or null.</param>
/// <param name="TargetWeightSum">Σ w[target] over counted rows (float64 scalar) for class-index targets with weights; null otherwise.</param>
/// <param name="PerTokenShape">The shape per-token losses are given back in (<see cref="torch.nn.Reduction.None"/>).</param>
internal sealed record PreparedTargets(Tensor Target, Tensor Counted, double[]? ClassWeights, Tensor? TargetWeightSum, long[] PerTokenShape)
{
    /// <summary>True when <see cref="Target"/> holds distributions rather than class indices.</summary>
    public bool IsSoft => Target.dim() == 2;

    /// <summary>
    /// True when <see cref="Counted"/> is exactly "<see cref="Target"/> is not the ignore index" (no loss mask), so
    /// the targets can go to libtorch's <c>ignore_index</c> without folding a mask in.
    /// </summary>
    public bool OnlyIgnoreIndex { get; init; }

    /// <summary>
    /// What <see cref="torch.nn.Reduction.Mean"/> divides Σ loss by, as torch does: Σ w[target] of counted tokens for
    /// weighted class-index targets, the number of counted rows otherwise; 1 when nothing is counted, so the mean is 0.
    /// </summary>
    public Tensor MeanDenominator(Tensor tokenCount) => TargetWeightSum is null
        ? LossReduction.CountDenominator(tokenCount)
        : TargetWeightSum.masked_fill(tokenCount.eq(0), 1);
}
