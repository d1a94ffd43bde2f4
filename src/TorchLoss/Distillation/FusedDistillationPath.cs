using TorchLoss.Kernels;
using static TorchSharp.torch;

namespace TorchLoss;

/// <summary>
/// The fused-kernel path of <see cref="DistillationLoss"/>: decides when it applies and maps the options onto the
/// kernel's plain arguments. Same inputs and the same <see cref="DistillationResult"/> contract as <see cref="DistillationComputation"/>.
/// </summary>
internal static class FusedDistillationPath
{
    /// <summary>Whether the fused kernel computes the loss of <paramref name="student"/> and <paramref name="teacher"/> [N, V].</summary>
    /// <exception cref="ArgumentException">The fused backend is forced for logits it cannot handle.</exception>
    public static bool IsSelected(Tensor student, Tensor teacher, DistillationOptions options)
    {
        switch (options.Backend)
        {
            case DistillationBackend.LibTorch:
                return false;
            case DistillationBackend.Fused:
                if (student.device_type != TorchSharp.DeviceType.CPU)
                {
                    throw new ArgumentException(
                        $"DistillationBackend.Fused runs on the CPU only, but the logits are on {student.device}; use Auto or LibTorch there.",
                        nameof(student));
                }
                return true;
            default:
                return options.Divergence == DistillationDivergence.Forward
                    && student.device_type == TorchSharp.DeviceType.CPU
                    && student.dtype == ScalarType.Float32 && teacher.dtype == ScalarType.Float32
                    && student.is_contiguous() && teacher.is_contiguous();
        }
    }

    /// <summary>The loss of validated, flattened inputs: student [N, V], detached teacher [N, V], counted [N] bool.</summary>
    public static DistillationResult Compute(Tensor student, Tensor teacher, Tensor counted, DistillationOptions options, long? normalizer, long[] perPositionShape)
    {
        using var scope = NewDisposeScope();
        // Half and bfloat16 lose too much in log-sum-exp: compute in float32; autograd gives the gradient back in the input dtype.
        var s = (student.dtype is ScalarType.Float32 or ScalarType.Float64 ? student : student.to(ScalarType.Float32)).contiguous();
        var t = teacher.to(s.dtype).contiguous();
        var countedRows = counted.contiguous();
        long positions = countedRows.sum(ScalarType.Int64).item<long>();
        var call = new FusedDistillationCall
        {
            Temperature = options.Temperature,
            LossFactor = options.LossFactor,
            Scale = LossReduction.Scale(options.Reduction, normalizer, positions, positions),
            PerRow = options.Reduction == nn.Reduction.None,
            NeedGradient = is_grad_enabled() && s.requires_grad,
        };
        var loss = FusedDistillationFunction.Apply(s, t, countedRows, call);
        var kl = tensor(call.KlSum, ScalarType.Float64);
        var result = new DistillationResult(
            call.PerRow ? loss.reshape(perPositionShape) : loss,
            tensor(call.EntropySum, ScalarType.Float64),
            tensor(call.CrossEntropySum, ScalarType.Float64),
            kl,
            kl.clone(),
            tensor(positions, ScalarType.Int64));
        return result.MoveToOuterDisposeScope();
    }
}
