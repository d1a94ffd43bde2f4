using System.Buffers;
using System.Numerics;

namespace TorchLoss.Kernels;

/// <summary>
/// Forward KL(P‖Q) between a teacher's P = softmax(t/τ) and a student's Q = softmax(s/τ), with the teacher entropy,
/// the cross-entropy and the gradient, in one sweep per row on plain memory. Per counted row, in z = x/τ:
/// <c>H = lse_t − Σ p·z_t</c>, <c>CE = lse_s − Σ p·z_s</c>, <c>KL = CE − H</c> and <c>∂KL/∂s_j = (q_j − p_j)/τ</c>.
/// </summary>
/// <remarks>
/// Each row is walked in blocks small enough that a block of both logits, its gradient and the teacher's
/// exponentials stay in L1: one read of both rows computes the block maxima, exp((x − block max)/τ) of the student
/// (written straight into the gradient row) and of the teacher (into a row-long scratch buffer), their sums and the
/// teacher-weighted logit sums the totals need. A second pass, over the gradient and scratch rows while they are
/// still in cache, rescales both to probabilities and writes their difference. Memory traffic is one read of each
/// input and one write of the gradient. Teacher entries of −∞ have p = 0 and contribute 0·log 0 = 0. Rows run in parallel.
/// </remarks>
internal static class FusedDistillationKernel
{
    /// <summary>The smallest amount of work (elements) one parallel task gets, so small inputs do not pay for threads.</summary>
    private const long ElementsPerTask = 1 << 17;

    /// <summary>Runs the kernel. <paramref name="gradient"/> may be the same memory as <paramref name="student"/> (in-place).</summary>
    /// <typeparam name="T">float or double.</typeparam>
    /// <param name="student">rows × classes student logits, row-major.</param>
    /// <param name="teacher">rows × classes teacher logits, row-major; −∞ allowed.</param>
    /// <param name="counted">rows flags: false = the row contributes nothing (totals and gradient are 0).</param>
    /// <param name="gradient">rows × classes outputs gradientScale·(q − p), or null when no gradient is wanted.</param>
    /// <param name="rowKl">rows outputs: KL(P‖Q) of each row.</param>
    /// <param name="rowEntropy">rows outputs: H(P) of each row.</param>
    /// <param name="rowCrossEntropy">rows outputs: H(P, Q) of each row.</param>
    /// <param name="rows">Number of rows N.</param>
    /// <param name="classes">Number of classes V ≥ 1.</param>
    /// <param name="temperature">τ &gt; 0 dividing both logits.</param>
    /// <param name="gradientScale">Factor on q − p in the gradient (the loss's factor, reduction and the 1/τ of the chain rule).</param>
    public static unsafe void Run<T>(
        T* student, T* teacher, bool* counted, T* gradient, double* rowKl, double* rowEntropy, double* rowCrossEntropy,
        long rows, long classes, double temperature, double gradientScale)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (rows <= 0) return;
        if (classes <= 0 || classes > int.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(classes), classes, "The class count must be in [1, 2^31).");
        var args = new Arguments<T>(student, teacher, counted, gradient, rowKl, rowEntropy, rowCrossEntropy, (int)classes, temperature, gradientScale);
        KernelParallel.ForRows(rows, classes, ElementsPerTask, (first, end) => RunRows(args, first, end));
    }

    private static unsafe void RunRows<T>(Arguments<T> a, long firstRow, long endRow) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int classes = a.Classes;
        int block = BlockLength<T>();
        int blocks = (classes + block - 1) / block;
        var stats = new BlockStatistics(blocks);
        T[]? studentScratch = a.Gradient == null ? ArrayPool<T>.Shared.Rent(Math.Min(block, classes)) : null;
        // Without a gradient there is no second pass, so the teacher's exponentials need one block only.
        T[] teacherScratch = ArrayPool<T>.Shared.Rent(a.Gradient == null ? Math.Min(block, classes) : classes);
        T inverseTemperature = T.CreateTruncating(1 / a.Temperature);
        try
        {
            for (long row = firstRow; row < endRow; row++)
            {
                var g = a.Gradient == null ? Span<T>.Empty : new Span<T>(a.Gradient + row * classes, classes);
                if (!a.Counted[row])
                {
                    a.RowKl[row] = 0;
                    a.RowEntropy[row] = 0;
                    a.RowCrossEntropy[row] = 0;
                    g.Clear();
                    continue;
                }
                var s = new ReadOnlySpan<T>(a.Student + row * classes, classes);
                var t = new ReadOnlySpan<T>(a.Teacher + row * classes, classes);
                for (int b = 0; b < blocks; b++)
                {
                    int start = b * block;
                    int length = Math.Min(block, classes - start);
                    var sb = s.Slice(start, length);
                    var tb = t.Slice(start, length);
                    // Read before the block is overwritten when the gradient aliases the student's logits.
                    T studentMax = RowPrimitives.MaxAndSum(sb, out _);
                    T teacherMax = RowPrimitives.MaxAndSum(tb, out _);
                    var es = g.IsEmpty ? studentScratch.AsSpan(0, length) : g.Slice(start, length);
                    var et = a.Gradient == null ? teacherScratch.AsSpan(0, length) : teacherScratch.AsSpan(start, length);
                    stats.StudentMax[b] = double.CreateTruncating(studentMax);
                    stats.TeacherMax[b] = double.CreateTruncating(teacherMax);
                    if (T.IsNegativeInfinity(teacherMax))
                    {
                        et.Clear();
                        stats.TeacherSum[b] = stats.TeacherLogits[b] = stats.StudentLogits[b] = 0;
                    }
                    else
                    {
                        stats.TeacherSum[b] = double.CreateTruncating(RowPrimitives.ShiftedExpSum(tb, teacherMax, inverseTemperature, et));
                        // Σ e_t·(x − block max), relative to the block maxima so that large logits lose no precision.
                        stats.TeacherLogits[b] = double.CreateTruncating(RowPrimitives.WeightedShiftedSum<T>(et, tb, teacherMax));
                        stats.StudentLogits[b] = T.IsNegativeInfinity(studentMax)
                            ? double.NegativeInfinity
                            : double.CreateTruncating(RowPrimitives.WeightedShiftedSum<T>(et, sb, studentMax));
                    }
                    stats.StudentSum[b] = T.IsNegativeInfinity(studentMax) ? 0 : double.CreateTruncating(RowPrimitives.ShiftedExpSum(sb, studentMax, inverseTemperature, es));
                    if (T.IsNegativeInfinity(studentMax)) es.Clear();
                }

                double tau = a.Temperature;
                double lseS = LogSumExp(stats.StudentMax, stats.StudentSum, blocks, tau);
                double lseT = LogSumExp(stats.TeacherMax, stats.TeacherSum, blocks, tau);
                // With w_b = exp(M_b/τ − lse_t) the teacher's probabilities are w_b·e_t, and Σ_b w_b·ΣE_b = 1, so
                // H = Σ_b w_b·(ΣE_b·(lse_t − M_b/τ) − Σ e_t·(t − M_b)/τ), and CE likewise with the student's maxima.
                double entropy = 0, crossEntropy = 0;
                for (int b = 0; b < blocks; b++)
                {
                    if (stats.TeacherSum[b] == 0) continue;
                    double w = Math.Exp(stats.TeacherMax[b] / tau - lseT);
                    stats.TeacherWeight[b] = w;
                    entropy += w * (stats.TeacherSum[b] * (lseT - stats.TeacherMax[b] / tau) - stats.TeacherLogits[b] / tau);
                    crossEntropy += w * (stats.TeacherSum[b] * (lseS - stats.StudentMax[b] / tau) - stats.StudentLogits[b] / tau);
                }
                a.RowEntropy[row] = entropy;
                a.RowCrossEntropy[row] = crossEntropy;
                a.RowKl[row] = crossEntropy - entropy;
                if (g.IsEmpty) continue;

                for (int b = 0; b < blocks; b++)
                {
                    int start = b * block;
                    int length = Math.Min(block, classes - start);
                    double studentFactor = stats.StudentSum[b] == 0 ? 0 : a.GradientScale * Math.Exp(stats.StudentMax[b] / tau - lseS);
                    double teacherFactor = stats.TeacherSum[b] == 0 ? 0 : a.GradientScale * stats.TeacherWeight[b];
                    RowPrimitives.ScaledDifference(g.Slice(start, length), T.CreateTruncating(studentFactor), teacherScratch.AsSpan(start, length), T.CreateTruncating(teacherFactor));
                }
            }
        }
        finally
        {
            if (studentScratch is not null) ArrayPool<T>.Shared.Return(studentScratch);
            ArrayPool<T>.Shared.Return(teacherScratch);
        }
    }

    /// <summary>log Σ_j exp(x_j/τ) from block maxima M_b and block sums Σ exp((x − M_b)/τ); NaN when every logit is −∞, as in libtorch.</summary>
    private static double LogSumExp(double[] blockMax, double[] blockSum, int blocks, double tau)
    {
        double max = double.NegativeInfinity;
        for (int b = 0; b < blocks; b++)
        {
            if (blockSum[b] == 0) continue;
            if (blockMax[b] > max || double.IsNaN(blockMax[b])) max = blockMax[b];
        }
        if (double.IsNegativeInfinity(max)) return double.NaN;
        double sum = 0;
        for (int b = 0; b < blocks; b++)
        {
            if (blockSum[b] != 0) sum += blockSum[b] * Math.Exp((blockMax[b] - max) / tau);
        }
        return max / tau + Math.Log(sum);
    }

    /// <summary>Elements per block: 8 KiB, so a block of both logits, the gradient and the teacher's exponentials fit L1 together.</summary>
    private static unsafe int BlockLength<T>() where T : unmanaged => 8192 / sizeof(T);

    /// <summary>Per-block figures of one row, reused across the rows of a task.</summary>
    private sealed class BlockStatistics(int blocks)
    {
        public readonly double[] StudentMax = new double[blocks];
        public readonly double[] TeacherMax = new double[blocks];
        public readonly double[] StudentSum = new double[blocks];
        public readonly double[] TeacherSum = new double[blocks];
        public readonly double[] TeacherLogits = new double[blocks];
        public readonly double[] StudentLogits = new double[blocks];
        public readonly double[] TeacherWeight = new double[blocks];
    }

    private readonly unsafe struct Arguments<T>(
        T* student, T* teacher, bool* counted, T* gradient, double* rowKl, double* rowEntropy, double* rowCrossEntropy,
        int classes, double temperature, double gradientScale) where T : unmanaged
    {
        public readonly T* Student = student;
        public readonly T* Teacher = teacher;
        public readonly bool* Counted = counted;
        public readonly T* Gradient = gradient;
        public readonly double* RowKl = rowKl;
        public readonly double* RowEntropy = rowEntropy;
        public readonly double* RowCrossEntropy = rowCrossEntropy;
        public readonly int Classes = classes;
        public readonly double Temperature = temperature;
        public readonly double GradientScale = gradientScale;
    }
}
