using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss.Kernels;

/// <summary>One run of rows [Start, Start + Length) of the flattened hidden states; a chunk is one or more of them.</summary>
internal readonly record struct HeadSegment(long Start, long Length);

/// <summary>Which of hidden, weight and bias a sweep builds the gradient of.</summary>
internal readonly record struct HeadWanted(bool Hidden, bool Weight, bool Bias)
{
    public static HeadWanted None => default;

    public bool Any => Hidden || Weight || Bias;
}

/// <summary>
/// A chunked loss's formula: with the chunk's losses already in the row spans (its rows' log-sum-exp in
/// <paramref name="rowLse"/>, indexed by global row), the factors of each buffer row of <paramref name="chunk"/> (its
/// segments in order) for <see cref="HeadGradientAccumulator.AddChunk"/>: logit gradient <c>f·p − s·c − a·e_t</c>.
/// Rows not counted keep 0 in all three.
/// </summary>
internal delegate void HeadRowFactors(HeadSegment[] chunk, double[] rowLse, Span<double> f, Span<double> s, Span<double> a);

/// <summary>
/// The plumbing every chunked (fused-linear) loss shares: <c>hidden·weightᵀ (+ bias)</c> chunk by chunk into one buffer,
/// the fused cross-entropy kernel turning each chunk's logits into per-row losses and, when gradients are wanted, its
/// softmax in place, and <see cref="HeadGradientAccumulator"/> folding the softmax into the gradients before the next
/// chunk reuses the buffer. A loss supplies only its chunks and its per-row factors (<see cref="HeadRowFactors"/>):
/// the cross-entropy head (<see cref="ChunkedLinearCrossEntropyFunction"/>) chunks rows, the preference head
/// (<see cref="ChunkedLinearSequenceLogProbFunction"/>) whole pairs of sequences.
/// </summary>
internal static class ChunkedHeadSweep
{
    /// <summary>Consecutive chunks of at most <paramref name="chunkRows"/> rows, one segment each.</summary>
    public static IEnumerable<HeadSegment[]> RowChunks(long rows, long chunkRows)
    {
        for (long start = 0; start < rows; start += chunkRows)
            yield return [new HeadSegment(start, Math.Min(chunkRows, rows - start))];
    }

    /// <summary>
    /// One pass over <paramref name="chunks"/> (at most <paramref name="bufferRows"/> rows each): losses into the row spans
    /// and, where wanted, the three gradients, built by <see cref="HeadGradientAccumulator"/> from each chunk's softmax
    /// with the factors <paramref name="factors"/> gives (columns below <paramref name="filter"/>/V skipped).
    /// </summary>
    public static (Tensor? Hidden, Tensor? Weight, Tensor? Bias) Sweep(
        Tensor hidden, Tensor weight, Tensor? bias, Tensor targets, Tensor counted, FusedCrossEntropyCall call,
        IEnumerable<HeadSegment[]> chunks, long bufferRows, double filter, HeadWanted wanted, HeadRowFactors? factors,
        double[] rowLoss, double[] rowNll, double[] rowZLoss)
    {
        long rows = hidden.shape[0];
        long classes = weight.shape[0];
        var weightT = weight.t();
        using var buffer = empty([Math.Min(bufferRows, rows), classes], hidden.dtype, hidden.device);
        var target = wanted.Any ? targets.data<long>().ToArray() : null;
        var isCounted = wanted.Any ? counted.data<bool>().ToArray() : null;
        var rowLse = wanted.Any ? new double[rows] : null;
        using var gradients = wanted.Any
            ? new HeadGradientAccumulator(hidden, weight, bias, wanted.Hidden, wanted.Weight, wanted.Bias,
                call.ClassWeights, smoothing: call.Epsilon != 0, cutoff: filter / classes)
            : null;
        foreach (var chunk in chunks)
        {
            using var scope = NewDisposeScope();
            long offset = 0;
            foreach (var (start, length) in chunk)
            {
                var logits = Logits(buffer, offset, hidden.narrow(0, start, length), weightT, bias);
                int from = (int)start, count = (int)length;
                // With gradients wanted this turns the segment's logits into its softmax in place.
                FusedCrossEntropyFunction.RunKernel(
                    logits, targets.narrow(0, start, length), counted.narrow(0, start, length), gradients is null ? null : logits,
                    rowLoss.AsSpan(from, count), rowNll.AsSpan(from, count), rowZLoss.AsSpan(from, count),
                    call, 1.0, null, rowLse is null ? default : rowLse.AsSpan(from, count));
                offset += length;
            }
            if (gradients is null) continue;
            int chunkRows = (int)offset;
            var f = new double[chunkRows];
            var s = new double[chunkRows];
            var a = new double[chunkRows];
            factors!(chunk, rowLse!, f, s, a);
            offset = 0;
            foreach (var (start, length) in chunk)
            {
                int at = (int)offset, count = (int)length;
                var safeTarget = new long[count];
                for (int i = 0; i < count; i++)
                    if (isCounted![start + i]) safeTarget[i] = target![start + i];
                gradients.AddChunk(start, hidden.narrow(0, start, length), buffer.narrow(0, offset, length),
                    f[at..(at + count)], s[at..(at + count)], a[at..(at + count)], safeTarget);
                offset += length;
            }
        }
        if (gradients is null) return (null, null, null);
        gradients.Finish();
        LastActiveFraction = gradients.TotalColumns == 0 ? 1 : (double)gradients.ActiveColumns / gradients.TotalColumns;
        return (gradients.Hidden, gradients.Weight, gradients.Bias);
    }

    /// <summary>The fraction of (chunk, column) pairs the last gradient sweep on this thread kept: 1 without filtering.</summary>
    [ThreadStatic]
    internal static double LastActiveFraction;

    /// <summary>
    /// The gradients as libtorch expressions of the inputs, for a backward that records a graph (<c>create_graph</c>):
    /// this materialises the [N, V] logits, as the plain head would, but gives right higher derivatives.
    /// <paramref name="rowFactor"/> scales each row's cross-entropy gradient (a scalar or [N, 1]).
    /// </summary>
    public static (Tensor? Hidden, Tensor? Weight, Tensor? Bias) DifferentiableGradients(
        Tensor hidden, Tensor weight, Tensor? bias, Tensor targets, Tensor counted, FusedCrossEntropyCall call, HeadWanted wanted, Tensor rowFactor)
    {
        var logits = nn.functional.linear(hidden, weight, bias);
        var gradLogits = CrossEntropyGradientExpression.Build(logits, targets, counted, call.Epsilon, call.ZLossWeight, rowFactor, call.ClassWeights);
        return (
            wanted.Hidden ? gradLogits.mm(weight) : null,
            wanted.Weight ? gradLogits.t().mm(hidden) : null,
            wanted.Bias ? gradLogits.sum(dim: 0) : null);
    }

    /// <summary>The segment's logits h·weightᵀ (+ bias), written into <paramref name="buffer"/> from row <paramref name="offset"/>.</summary>
    private static Tensor Logits(Tensor buffer, long offset, Tensor h, Tensor weightT, Tensor? bias)
    {
        var logits = buffer.narrow(0, offset, h.shape[0]);
        logits.addmm_(h, weightT, beta: 0, alpha: 1);
        if (bias is not null) logits.add_(bias);
        return logits;
    }
}
