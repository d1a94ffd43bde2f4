using System.Buffers;
using System.Numerics;
using System.Numerics.Tensors;

namespace TorchLoss.Kernels;

/// <summary>
/// Cross-entropy and its gradient over row-major logits in one sweep per row, on plain memory.
/// Per counted row with log-sum-exp <c>lse</c>, target <c>t</c>, smoothing <c>ε</c> (the uniform convention,
/// any ε ≥ 0) and z-loss weight <c>w</c>:
/// <c>loss = (1−ε)·(lse − x_t) + (ε/K)·Σ_j (lse − x_j) + w·lse²</c> and
/// <c>∂loss/∂x_j = (1 + 2w·lse)·p_j − ε/K − (1−ε)·[j = t]</c>.
/// With class weights c (torch's weighted form, Σ_j c_j·q_j·(lse − x_j) for the smoothed target q) the loss is
/// <c>(1−ε)·c_t·(lse − x_t) + (ε/K)·Σ_j c_j·(lse − x_j) + w·lse²</c> and
/// <c>∂loss/∂x_j = (S + 2w·lse)·p_j − (ε/K)·c_j − (1−ε)·c_t·[j = t]</c> with <c>S = (1−ε)·c_t + (ε/K)·Σ_j c_j</c>.
/// </summary>
/// <remarks>
/// Each row is walked in blocks small enough to stay in L1: one read of the logits from memory computes the
/// block maximum, the block sum of logits and exp(x − block max), written straight into the gradient row; a
/// second pass, over the gradient row while it is still in cache, rescales every block to the final
/// probabilities. Memory traffic is therefore one read of the logits and one write of the gradient, the same
/// as a copy. Rows are independent and run in parallel.
/// </remarks>
internal static class FusedCrossEntropyKernel
{
    /// <summary>The smallest amount of work (elements) one parallel task gets, so small inputs do not pay for threads.</summary>
    private const long ElementsPerTask = 1 << 17;

    /// <summary>
    /// Runs the kernel. <paramref name="gradient"/> may be the same memory as <paramref name="logits"/> (in-place).
    /// </summary>
    /// <typeparam name="T">float or double.</typeparam>
    /// <param name="logits">rows × classes values, row-major.</param>
    /// <param name="targets">rows target classes; read only where <paramref name="counted"/> is true, and then in [0, classes).</param>
    /// <param name="counted">rows flags: false = the row contributes nothing (loss, NLL, z-loss and gradient are 0).</param>
    /// <param name="gradient">rows × classes outputs, or null when no gradient is wanted.</param>
    /// <param name="rowLoss">rows outputs: smoothed loss plus z-loss of each row.</param>
    /// <param name="rowNll">rows outputs: unsmoothed negative log-likelihood of each row.</param>
    /// <param name="rowZLoss">rows outputs: weighted z-loss of each row.</param>
    /// <param name="rows">Number of rows N.</param>
    /// <param name="classes">Number of classes K ≥ 1.</param>
    /// <param name="epsilon">Uniform-convention smoothing ε ≥ 0 (values above 1 are valid and mean negative weight on the target).</param>
    /// <param name="zLossWeight">Weight w ≥ 0 of w·lse².</param>
    /// <param name="gradientScale">Factor applied to every gradient value (e.g. 1/token count for a mean).</param>
    /// <param name="rowGradientScale">Optional rows factors applied to each row's gradient on top of <paramref name="gradientScale"/>.</param>
    /// <param name="classWeights">Optional classes weights c_j ≥ 0 (null = all 1); <paramref name="rowNll"/> stays unweighted.</param>
    /// <param name="rowLse">
    /// Optional rows outputs. When given, <paramref name="gradient"/> receives the softmax p_j of each counted row
    /// instead of the gradient, and this the row's log-sum-exp: the caller applies the row factor, the smoothing
    /// shift and the target term itself (the chunked head does, in closed form). Uncounted rows get 0 in both.
    /// </param>
    public static unsafe void Run<T>(
        T* logits, long* targets, bool* counted, T* gradient,
        double* rowLoss, double* rowNll, double* rowZLoss,
        long rows, long classes, double epsilon, double zLossWeight, double gradientScale, T* rowGradientScale = null, T* classWeights = null,
        double* rowLse = null)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (rows <= 0) return;
        if (classes <= 0 || classes > int.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(classes), classes, "The class count must be in [1, 2^31).");
        double weightTotal = classes;
        if (classWeights != null)
        {
            weightTotal = 0;
            for (long c = 0; c < classes; c++) weightTotal += double.CreateTruncating(classWeights[c]);
        }
        var args = new Arguments<T>(
            logits, targets, counted, gradient, rowLoss, rowNll, rowZLoss, rowGradientScale, classWeights, rowLse, (int)classes, epsilon, zLossWeight, gradientScale, weightTotal);
        KernelParallel.ForRows(rows, classes, ElementsPerTask, (first, end) => RunRows(args, first, end));
    }

    private static unsafe void RunRows<T>(Arguments<T> a, long firstRow, long endRow) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int classes = a.Classes;
        int block = BlockLength<T>();
        int blocks = (classes + block - 1) / block;
        T[]? scratch = a.Gradient == null ? ArrayPool<T>.Shared.Rent(Math.Min(block, classes)) : null;
        double[] blockMax = ArrayPool<double>.Shared.Rent(blocks);
        double[] blockSum = ArrayPool<double>.Shared.Rent(blocks);
        try
        {
            for (long row = firstRow; row < endRow; row++)
            {
                var x = new ReadOnlySpan<T>(a.Logits + row * classes, classes);
                var g = a.Gradient == null ? Span<T>.Empty : new Span<T>(a.Gradient + row * classes, classes);
                if (!a.Counted[row])
                {
                    a.RowLoss[row] = 0;
                    a.RowNll[row] = 0;
                    a.RowZLoss[row] = 0;
                    if (a.RowLse != null) a.RowLse[row] = 0;
                    g.Clear();
                    continue;
                }
                long target = a.Targets[row];
                double targetLogit = double.CreateTruncating(x[(int)target]);
                double rowScale = a.GradientScale * (a.RowGradientScale == null ? 1.0 : double.CreateTruncating(a.RowGradientScale[row]));
                var weights = a.ClassWeights == null ? ReadOnlySpan<T>.Empty : new ReadOnlySpan<T>(a.ClassWeights, classes);
                RowStatistics(x, g, scratch, a.Epsilon > 0 ? weights : ReadOnlySpan<T>.Empty, blockMax, blockSum, blocks, block, out double lse, out double sumLogits);

                // With weights and smoothing sumLogits is Σ c_j·x_j; targetWeight and WeightTotal are 1 and K without weights.
                double targetWeight = weights.IsEmpty ? 1 : double.CreateTruncating(weights[(int)target]);
                double nll = lse - targetLogit;
                double zLoss = a.ZLossWeight * lse * lse;
                double smoothed = a.Epsilon > 0
                    ? (1 - a.Epsilon) * targetWeight * nll + a.Epsilon / classes * (a.WeightTotal * lse - sumLogits)
                    : targetWeight * nll;
                a.RowLoss[row] = smoothed + zLoss;
                a.RowNll[row] = nll;
                a.RowZLoss[row] = zLoss;
                if (a.RowLse != null) a.RowLse[row] = lse;
                if (g.IsEmpty) continue;
                if (a.RowLse != null)
                {
                    for (int b = 0; b < blocks; b++)
                    {
                        int start = b * block;
                        double p = double.IsNegativeInfinity(blockMax[b]) ? 0 : Math.Exp(blockMax[b] - lse);
                        RowPrimitives.ScaleAndShift(g.Slice(start, Math.Min(block, classes - start)), T.CreateTruncating(p), T.Zero);
                    }
                    continue;
                }

                // g holds exp(x − blockMax) per block: scale each block to (S + 2w·lse)·p_j, minus the smoothing term.
                double targetMass = (1 - a.Epsilon) * targetWeight + a.Epsilon / classes * a.WeightTotal;
                double probabilityFactor = rowScale * (targetMass + 2 * a.ZLossWeight * lse);
                double smoothingShift = -rowScale * a.Epsilon / classes;
                for (int b = 0; b < blocks; b++)
                {
                    int start = b * block;
                    var gb = g.Slice(start, Math.Min(block, classes - start));
                    double factor = double.IsNegativeInfinity(blockMax[b]) ? 0 : probabilityFactor * Math.Exp(blockMax[b] - lse);
                    if (weights.IsEmpty)
                    {
                        RowPrimitives.ScaleAndShift(gb, T.CreateTruncating(factor), T.CreateTruncating(smoothingShift));
                        continue;
                    }
                    RowPrimitives.ScaleAndShift(gb, T.CreateTruncating(factor), T.Zero);
                    if (smoothingShift != 0) TensorPrimitives.MultiplyAdd(weights.Slice(start, gb.Length), T.CreateTruncating(smoothingShift), gb, gb);
                }
                g[(int)target] -= T.CreateTruncating(rowScale * (1 - a.Epsilon) * targetWeight);
            }
        }
        finally
        {
            if (scratch is not null) ArrayPool<T>.Shared.Return(scratch);
            ArrayPool<double>.Shared.Return(blockMax);
            ArrayPool<double>.Shared.Return(blockSum);
        }
    }

    /// <summary>
    /// One read of the row: log-sum-exp and Σ logits (Σ c_j·x_j with <paramref name="weights"/>), leaving exp(x − block max)
    /// per block in <paramref name="g"/> (or in the scratch buffer when no gradient is wanted) and the block maxima in <paramref name="blockMax"/>.
    /// </summary>
    private static void RowStatistics<T>(
        ReadOnlySpan<T> x, Span<T> g, T[]? scratch, ReadOnlySpan<T> weights, double[] blockMax, double[] blockSum, int blocks, int block,
        out double lse, out double sumLogits) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int classes = x.Length;
        double max = double.NegativeInfinity;
        sumLogits = 0;
        for (int b = 0; b < blocks; b++)
        {
            int start = b * block;
            int length = Math.Min(block, classes - start);
            var xb = x.Slice(start, length);
            // Σ x must be read before the block is overwritten when the gradient aliases the logits.
            T m = RowPrimitives.MaxAndSum(xb, out T blockLogitSum);
            if (!weights.IsEmpty) blockLogitSum = TensorPrimitives.Dot(xb, weights.Slice(start, length));
            sumLogits += double.CreateTruncating(blockLogitSum);
            var eb = g.IsEmpty ? scratch.AsSpan(0, length) : g.Slice(start, length);
            double mb = double.CreateTruncating(m);
            blockMax[b] = mb;
            if (double.IsNegativeInfinity(mb))
            {
                eb.Clear();
                blockSum[b] = 0;
                continue;
            }
            blockSum[b] = double.CreateTruncating(RowPrimitives.ShiftedExpSum(xb, m, eb));
            if (mb > max || double.IsNaN(mb)) max = mb;
        }
        if (double.IsNegativeInfinity(max))
        {
            // Every logit is −inf: the distribution is undefined, as in libtorch.
            lse = double.NaN;
            return;
        }
        double sum = 0;
        for (int b = 0; b < blocks; b++)
            sum += blockSum[b] * Math.Exp(blockMax[b] - max);
        lse = max + Math.Log(sum);
    }

    /// <summary>Elements per block: 16 KiB, so a block of logits and its gradient stay in L1 together.</summary>
    private static unsafe int BlockLength<T>() where T : unmanaged => 16384 / sizeof(T);

    private readonly unsafe struct Arguments<T>(
        T* logits, long* targets, bool* counted, T* gradient, double* rowLoss, double* rowNll, double* rowZLoss, T* rowGradientScale, T* classWeights,
        double* rowLse, int classes, double epsilon, double zLossWeight, double gradientScale, double weightTotal) where T : unmanaged
    {
        public readonly T* Logits = logits;
        public readonly long* Targets = targets;
        public readonly bool* Counted = counted;
        public readonly T* Gradient = gradient;
        public readonly double* RowLoss = rowLoss;
        public readonly double* RowNll = rowNll;
        public readonly double* RowZLoss = rowZLoss;
        public readonly T* RowGradientScale = rowGradientScale;
        public readonly T* ClassWeights = classWeights;
        public readonly double* RowLse = rowLse;
        public readonly int Classes = classes;
        public readonly double Epsilon = epsilon;
        public readonly double ZLossWeight = zLossWeight;
        public readonly double GradientScale = gradientScale;
        public readonly double WeightTotal = weightTotal;
    }
}
