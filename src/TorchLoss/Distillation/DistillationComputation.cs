using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss;

/// <summary>
/// The libtorch path of <see cref="DistillationLoss"/>, on libtorch operators (so it runs on every device and dtype and
/// supports double backward), on validated, flattened inputs: student [N, V], detached teacher [N, V], counted [N].
/// </summary>
/// <remarks>
/// The divergence and the rows of every total come from one no-grad sweep (<see cref="DivergenceRows"/>), which keeps
/// only the closed-form gradient for backward (<see cref="DivergenceFunction"/>); with Σ p = 1,
/// H(P, Q) = −Σ p·log q and KL(P‖Q) = H(P, Q) − H(P). What follows works on [N] rows only: the totals are one masked
/// float64 sum over a [4, N] stack. Nothing is read back to the host.
/// </remarks>
internal static class DistillationComputation
{
    public static DistillationResult Compute(Tensor student, Tensor teacher, Tensor? counted, DistillationOptions options, long? normalizer, long[] perPositionShape)
    {
        using var scope = NewDisposeScope();
        // Half and bfloat16 lose too much in log-sum-exp; compute in float32 and give the gradient back in the input dtype.
        var s = student.dtype is ScalarType.Float16 or ScalarType.BFloat16 ? student.to(ScalarType.Float32) : student;
        var t = teacher.dtype == s.dtype ? teacher : teacher.to(s.dtype);

        long positions = student.size(0);
        // Every position counted and a reduced loss: the loss is a scaled sum, which the function returns itself.
        double? sumScale = counted is null && options.Reduction != nn.Reduction.None
            ? options.LossFactor / (normalizer ?? (options.Reduction == nn.Reduction.Mean ? Math.Max(positions, 1) : 1))
            : null;
        Tensor output, divergence, teacherEntropy, crossEntropy;
        if (is_grad_enabled() && s.requires_grad)
        {
            var call = new DivergenceCall { Divergence = options.Divergence, Beta = options.Beta, Temperature = options.Temperature, SumScale = sumScale };
            output = DivergenceFunction.Apply(s, t, call);
            (divergence, teacherEntropy, crossEntropy) = (call.Rows!, call.TeacherEntropy!, call.CrossEntropy!);
        }
        else
        {
            var rows = DivergenceRows.Compute(s, t, options.Divergence, options.Beta, options.Temperature, gradient: false);
            (divergence, teacherEntropy, crossEntropy) = (rows.Divergence, rows.TeacherEntropy, rows.CrossEntropy);
            output = sumScale is { } scale ? DivergenceFunction.ScaledSum(divergence, scale) : divergence;
        }
        var uncounted = counted?.logical_not();

        // The four totals in one masked float64 sum over a [4, N] stack: a handful of operations per call, not sixteen.
        Tensor[] totals;
        using (no_grad())
        {
            var kl = options.Divergence == DistillationDivergence.Forward ? divergence : crossEntropy - teacherEntropy;
            var rows = stack([teacherEntropy, crossEntropy, kl, divergence]);
            totals = Counted(rows, uncounted).sum(1, type: ScalarType.Float64).unbind(0);
        }
        var positionCount = counted is null
            ? full(Array.Empty<long>(), positions, ScalarType.Int64, student.device)
            : counted.sum(ScalarType.Int64);
        var loss = sumScale is null ? Reduce(Counted(output, uncounted), options, normalizer, positionCount, perPositionShape) : output;
        return new DistillationResult(loss, totals[0], totals[1], totals[2], totals[3], positionCount).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// <see cref="LossReduction"/> of the per-position divergences times <see cref="DistillationOptions.LossFactor"/>
    /// (applied to the reduced scalar, not to [N]).
    /// </summary>
    private static Tensor Reduce(Tensor perPosition, DistillationOptions options, long? normalizer, Tensor positionCount, long[] perPositionShape)
    {
        double factor = options.LossFactor;
        if (options.Reduction == nn.Reduction.None)
            return LossReduction.Reduce(factor == 1 ? perPosition : perPosition * factor, options.Reduction, null, () => positionCount, perPositionShape);
        var loss = LossReduction.Reduce(perPosition, options.Reduction, normalizer, () => LossReduction.CountDenominator(positionCount), perPositionShape);
        return factor == 1 ? loss : loss * factor;
    }

    /// <summary>The values of counted positions (the last dimension), 0 elsewhere; as they are when every position counts.</summary>
    private static Tensor Counted(Tensor perPosition, Tensor? uncounted) => uncounted is null ? perPosition : perPosition.masked_fill(uncounted, 0);
}
