using TorchLoss.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss;

/// <summary>
/// The fused-kernel path of <see cref="CrossEntropyComputation"/>: decides when it applies and maps the
/// options onto the kernel's plain arguments. Same inputs and the same <see cref="LossResult"/> contract as the libtorch path.
/// </summary>
internal static class FusedCrossEntropyPath
{
    /// <summary>Below this class count <see cref="CrossEntropyBackend.Auto"/> always uses libtorch (one class is degenerate).</summary>
    public const long AutoMinimumClasses = 2;

    /// <summary>
    /// <see cref="CrossEntropyBackend.Auto"/>'s size rule for contiguous CPU float32 logits [<paramref name="rows"/>, <paramref name="classes"/>]:
    /// true where the fused kernel was measured to be faster than the libtorch path.
    /// </summary>
    /// <remarks>
    /// Evidence: the benchmark's <c>--paired --dispatch-grid</c> (N ∈ {64, 512, 4096, 32768} × V ∈ {2, 65, 1000, 32000, 128000},
    /// table in the README's "Size-aware dispatch") and <c>--paired --threshold</c> (V = 2 … 1024 at 2^22 logits).
    /// On a quiet machine the kernel took 0.10–0.60× the libtorch path's time at every point but one region: two
    /// classes and tens of thousands of rows (N = 32768, V = 2: 1.6×), where the kernel's per-row work (two passes,
    /// exp and log calls for two values) outweighs libtorch's log-softmax vectorised across rows, while the data is
    /// still small enough to sit in cache. With fewer rows fixed costs decide (the kernel's are lower), with more the
    /// memory traffic does (the kernel's is lower: at 2^21 rows of two classes it took 0.1–0.5×).
    /// </remarks>
    public static bool AutoPrefersFused(long rows, long classes)
    {
        if (classes < AutoMinimumClasses) return false;
        bool binaryWithManyRows = classes == 2 && rows >= 16_384 && rows < 1L << 20;
        return !binaryWithManyRows;
    }

    /// <summary>Whether the fused kernel computes the loss of <paramref name="logits"/> [N, C] under <paramref name="backend"/>.</summary>
    /// <exception cref="ArgumentException">The fused backend is forced for logits it cannot handle.</exception>
    public static bool IsSelected(Tensor logits, CrossEntropyBackend backend)
    {
        switch (backend)
        {
            case CrossEntropyBackend.LibTorch:
                return false;
            case CrossEntropyBackend.Fused:
                if (logits.device_type != DeviceType.CPU)
                {
                    throw new ArgumentException(
                        $"CrossEntropyBackend.Fused runs on the CPU only, but the logits are on {logits.device}; use Auto or LibTorch there.",
                        nameof(logits));
                }
                return true;
            default:
                return logits.device_type == DeviceType.CPU
                    && logits.dtype == ScalarType.Float32
                    && logits.is_contiguous()
                    && AutoPrefersFused(logits.size(0), logits.size(1));   // size(d), not shape: shape marshals a new array (about 1 µs)
        }
    }

    /// <summary>The loss of logits [N, C] against prepared class-index targets.</summary>
    public static LossResult Compute(Tensor logits, PreparedTargets targets, CrossEntropyOptions options, long? normalizer)
    {
        using var scope = NewDisposeScope();
        // Half and bfloat16 lose too much in log-sum-exp: compute in float32; autograd gives the gradient back in the input dtype.
        var x = (logits.dtype is ScalarType.Float32 or ScalarType.Float64 ? logits : logits.to(ScalarType.Float32)).contiguous();
        var countedRows = targets.Counted.contiguous();
        long tokenCount = countedRows.sum(ScalarType.Int64).item<long>();
        var call = NewCall(options, x.shape[1], targets, normalizer, tokenCount, needGradient: x.requires_grad, gradientInPlace: options.GradientInPlace);
        var loss = FusedCrossEntropyFunction.Apply(x, targets.Target.contiguous(), countedRows, call);
        return Result(loss, call, tokenCount, targets.PerTokenShape).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The kernel's plain arguments for <paramref name="options"/> over <paramref name="classes"/> classes and
    /// <paramref name="tokenCount"/> counted rows of <paramref name="targets"/> (divided by <paramref name="normalizer"/>
    /// if given); the gradient is written when <paramref name="needGradient"/> (an input requires one) and grad mode is on,
    /// over the logits themselves when <paramref name="gradientInPlace"/>.
    /// </summary>
    public static FusedCrossEntropyCall NewCall(CrossEntropyOptions options, long classes, PreparedTargets targets, long? normalizer, long tokenCount, bool needGradient, bool gradientInPlace = false) => new()
    {
        Epsilon = CrossEntropyComputation.UniformEquivalent(options, classes),
        ZLossWeight = options.ZLossWeight,
        ClassWeights = targets.ClassWeights,
        // A weighted mean divides by Σ w[target] of the counted tokens, as torch's does.
        Scale = LossReduction.Scale(options.Reduction, normalizer, targets.TargetWeightSum?.item<double>() ?? tokenCount, tokenCount),
        PerRow = options.Reduction == nn.Reduction.None,
        NeedGradient = is_grad_enabled() && needGradient,
        GradientInPlace = gradientInPlace,
    };

    /// <summary>The <see cref="LossResult"/> of a finished call: its loss (per-row losses reshaped to <paramref name="perTokenShape"/>) and its sums.</summary>
    public static LossResult Result(Tensor loss, FusedCrossEntropyCall call, long tokenCount, long[] perTokenShape) => new(
        call.PerRow ? loss.reshape(perTokenShape) : loss,
        tensor(call.NllSum, ScalarType.Float64),
        tensor(tokenCount, ScalarType.Int64),
        tensor(call.ZLossSum, ScalarType.Float64));
}
