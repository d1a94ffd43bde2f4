using static TorchSharp.torch;

namespace TorchLoss.Kernels;

/// <summary>
/// The gradient the fused kernel writes, <c>(1 + 2w·lse)·p − ε/K − (1−ε)·onehot</c> per counted row, as an
/// expression of libtorch operators: slower and larger than the kernel, but differentiable, so the fused paths use it
/// in backward when autograd records a graph of the gradient itself (<c>create_graph</c>, e.g. a gradient penalty or
/// a Hessian-vector product). Then second and higher derivatives are those of the libtorch path instead of zero.
/// </summary>
internal static class CrossEntropyGradientExpression
{
    /// <summary>
    /// ∂loss/∂logits times <paramref name="rowFactor"/>, differentiable in <paramref name="logits"/> and <paramref name="rowFactor"/>.
    /// With class weights c the kernel's gradient is <c>(S + 2w·lse)·p − (ε/K)·c − (1−ε)·c_t·onehot</c>, where
    /// <c>S = (1−ε)·c_t + (ε/K)·Σc</c>; without them c = 1 and S = 1.
    /// </summary>
    /// <param name="logits">[N, K] float32 or float64.</param>
    /// <param name="targets">[N] int64, read where <paramref name="counted"/>.</param>
    /// <param name="counted">[N] bool: uncounted rows get a zero gradient.</param>
    /// <param name="epsilon">Uniform-convention smoothing ε ≥ 0.</param>
    /// <param name="zLossWeight">z-loss weight w ≥ 0.</param>
    /// <param name="rowFactor">A scalar, or [N, 1] per-row factors, in the dtype of <paramref name="logits"/>.</param>
    /// <param name="classWeights">Optional K class weights, as the kernel takes them.</param>
    public static Tensor Build(Tensor logits, Tensor targets, Tensor counted, double epsilon, double zLossWeight, Tensor rowFactor, double[]? classWeights = null)
    {
        using var scope = NewDisposeScope();
        long classes = logits.shape[1];
        var lse = logits.logsumexp(1, keepdim: true);
        var probabilities = (logits - lse).exp();
        var safeTargets = targets.masked_fill(counted.logical_not(), 0).unsqueeze(1);
        Tensor gradient, targetTerm;
        if (classWeights is null)
        {
            gradient = zLossWeight > 0 ? probabilities * (1 + 2 * zLossWeight * lse) : probabilities;
            if (epsilon != 0) gradient = gradient - epsilon / classes;
            targetTerm = zeros_like(logits).scatter_(1, safeTargets, full(safeTargets.shape, 1.0 - epsilon, logits.dtype));
        }
        else
        {
            var weights = tensor(classWeights, logits.dtype, logits.device);
            var targetWeight = weights.index_select(0, safeTargets.squeeze(1)).unsqueeze(1);
            var rowWeight = (1 - epsilon) * targetWeight + epsilon / classes * weights.sum();
            gradient = probabilities * (rowWeight + 2 * zLossWeight * lse);
            if (epsilon != 0) gradient = gradient - epsilon / classes * weights.unsqueeze(0);
            targetTerm = zeros_like(logits).scatter_(1, safeTargets, (1.0 - epsilon) * targetWeight);
        }
        gradient = (gradient - targetTerm) * rowFactor;
        // where, not a product with the mask: a row of all −inf gives NaN, and NaN · 0 is still NaN.
        return where(counted.unsqueeze(1), gradient, zeros_like(gradient)).MoveToOuterDisposeScope();
    }
}
