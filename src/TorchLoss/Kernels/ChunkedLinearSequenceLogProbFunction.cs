using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss.Kernels;

/// <summary>
/// The gradient a preference loss will send back to the sequence log-probabilities of pairs
/// [<paramref name="firstPair"/>, <paramref name="firstPair"/> + n), from their Σ log p: ∂loss/∂chosen and ∂loss/∂rejected, n each.
/// </summary>
internal delegate (double[] Chosen, double[] Rejected) PairGradient(int firstPair, double[] chosenSums, double[] rejectedSums);

/// <summary>Plain-value arguments of one <see cref="ChunkedLinearSequenceLogProbFunction"/> call.</summary>
internal sealed class ChunkedSequenceCall
{
    /// <summary>Positions per sequence T: hidden row n belongs to sequence n / T.</summary>
    public required long SequenceLength { get; init; }

    /// <summary>Pairs whose 2·T rows of logits share one chunk (≥ 1).</summary>
    public required long PairsPerChunk { get; init; }

    /// <summary>Whether to build gradients at all (false under no_grad or when no input needs one).</summary>
    public bool NeedGradient { get; init; }

    /// <summary>The gradient filter τ ≥ 0 (0 = exact), as in <see cref="ChunkedLinearCrossEntropyFunction"/>.</summary>
    public double Filter { get; init; }

    /// <summary>
    /// The gradient the loss downstream will send back, pair by pair, or null when it is only known in backward
    /// (a per-pair loss): with it, the forward pass builds the gradients in the same sweep as the log-probabilities.
    /// </summary>
    public PairGradient? Anticipated { get; init; }
}

/// <summary>
/// Per-sequence Σ log p of <c>hidden·weightᵀ (+ bias)</c> for a concatenated preference batch (sequences [0, P) chosen,
/// [P, 2P) rejected) without the [2P·T, V] logits, on <see cref="ChunkedHeadSweep"/>: a chunk holds whole pairs, so
/// when the loss's gradient is known pair by pair (<see cref="ChunkedSequenceCall.Anticipated"/>) each chunk's softmax
/// becomes its share of the gradients as soon as its pairs' log-probabilities are summed, in one sweep.
/// Arguments: hidden [2P·T, d] (contiguous), weight [V, d], bias [V] or null, targets [2P·T] int64 (already shifted),
/// counted [2P·T] bool, a <see cref="ChunkedSequenceCall"/>. Returns [2P] float64. CPU, float32 or float64.
/// </summary>
/// <remarks>
/// A token's log-probability is minus its unsmoothed cross-entropy, so a sequence's gradient on row t's logits is
/// −g·(p_t − e_(t+1)) with g the incoming gradient of the sequence: the cross-entropy head's factors f = a = −g, s = 0.
/// Backward hands the gradients built in forward over when the incoming gradient is the anticipated one times a constant
/// (to 1e-9 of its largest entry: the same float64 formulas evaluated on a sub-batch may differ in the last bit);
/// otherwise (a per-pair loss, extra terms on the log-probabilities, a second backward) it sweeps again with the
/// incoming gradient. A backward that records a graph rebuilds the gradients from libtorch operators on the full logits.
/// </remarks>
internal sealed class ChunkedLinearSequenceLogProbFunction : autograd.SingleTensorFunction<ChunkedLinearSequenceLogProbFunction>
{
    /// <summary>Relative distance below which the incoming gradient counts as the anticipated one.</summary>
    private const double SameGradientTolerance = 1e-9;

    public override string Name => nameof(ChunkedLinearSequenceLogProbFunction);

    /// <summary>Runs the sweep; returns Σ log p of every sequence, [2P] float64.</summary>
    public static Tensor Apply(Tensor hidden, Tensor weight, Tensor? bias, Tensor targets, Tensor counted, ChunkedSequenceCall call) =>
        apply(hidden, weight, bias!, targets, counted, call);

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var hidden = (Tensor)vars[0];
        var weight = (Tensor)vars[1];
        var bias = vars[2] as Tensor;
        var targets = (Tensor)vars[3];
        var counted = (Tensor)vars[4];
        var call = (ChunkedSequenceCall)vars[5];
        ctx.save_data("call", call);

        long rows = hidden.shape[0];
        long sequences = rows / call.SequenceLength;
        var rowNll = new double[rows];
        var wanted = call.NeedGradient ? WantedOf(hidden, weight, bias) : HeadWanted.None;
        bool anticipate = call.Anticipated is not null && wanted.Any;
        var anticipated = anticipate ? new double[sequences] : null;
        var (gradHidden, gradWeight, gradBias) = Sweep(hidden, weight, bias, targets, counted, call, anticipate ? wanted : HeadWanted.None, rowNll,
            (chunk, chosen, rejected) =>
            {
                var (dChosen, dRejected) = call.Anticipated!(chunk.FirstPair, chosen, rejected);
                dChosen.CopyTo(anticipated!, chunk.FirstPair);
                dRejected.CopyTo(anticipated!, sequences / 2 + chunk.FirstPair);
                return (dChosen, dRejected);
            });
        if (wanted.Any)
        {
            ctx.save_for_backward([hidden, weight, bias!, targets, counted, gradHidden!, gradWeight!, gradBias!]);
            if (anticipated is not null) ctx.save_data("anticipated", anticipated);
        }
        var sums = new double[sequences];
        for (long q = 0; q < sequences; q++) sums[q] = SequenceSum(rowNll, q, call.SequenceLength);
        return tensor(sums, ScalarType.Float64);
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad_output)
    {
        using var scope = NewDisposeScope();
        var saved = ctx.get_saved_variables();
        var (hidden, weight, bias, targets, counted) = (saved[0], saved[1], saved[2], saved[3], saved[4]);
        var call = (ChunkedSequenceCall)ctx.get_data("call");
        var wanted = WantedOf(hidden, weight, bias);
        long sequenceLength = call.SequenceLength;
        var incoming = grad_output.to(ScalarType.Float64).contiguous().data<double>().ToArray();
        Tensor? gradHidden, gradWeight, gradBias;
        LastBackwardSwept = false;
        if (is_grad_enabled())
        {
            // create_graph: −g of each row's sequence, differentiable in g.
            var rowFactor = grad_output.to(hidden.dtype).neg().repeat_interleave(sequenceLength).unsqueeze(1);
            (gradHidden, gradWeight, gradBias) = ChunkedHeadSweep.DifferentiableGradients(
                hidden, weight, bias, targets, counted, new FusedCrossEntropyCall(), wanted, rowFactor);
        }
        else if (ctx.get_data("anticipated") is double[] anticipated && Proportion(incoming, anticipated) is { } factor && PrecomputedGradient.Take(ctx))
        {
            (gradHidden, gradWeight, gradBias) = (OwnView(saved[5]), OwnView(saved[6]), OwnView(saved[7]));
            if (factor != 1.0)
            {
                foreach (var g in new[] { gradHidden, gradWeight, gradBias }) g?.mul_(factor);
            }
        }
        else
        {
            long pairs = incoming.Length / 2;
            LastBackwardSwept = true;
            (gradHidden, gradWeight, gradBias) = Sweep(hidden, weight, bias, targets, counted, call, wanted, new double[hidden.shape[0]],
                (chunk, _, _) => (incoming[chunk.FirstPair..(chunk.FirstPair + chunk.Pairs)], incoming[(int)(pairs + chunk.FirstPair)..(int)(pairs + chunk.FirstPair + chunk.Pairs)]));
        }
        return [Outer(gradHidden), Outer(gradWeight), Outer(gradBias), null!, null!, null!];
    }

    /// <summary>Whether the last backward on this thread swept the chunks again (false: it handed over the gradients built in forward).</summary>
    [ThreadStatic]
    internal static bool LastBackwardSwept;

    /// <summary>Pairs [FirstPair, FirstPair + Pairs) of one chunk.</summary>
    private readonly record struct PairChunk(int FirstPair, int Pairs);

    /// <summary>
    /// One sweep over chunks of whole pairs: each token's NLL into <paramref name="rowNll"/> and, where wanted, the gradients
    /// for the sequence gradients <paramref name="sequenceGradient"/> gives for each chunk's pairs once their Σ log p are known.
    /// </summary>
    private static (Tensor? Hidden, Tensor? Weight, Tensor? Bias) Sweep(
        Tensor hidden, Tensor weight, Tensor? bias, Tensor targets, Tensor counted, ChunkedSequenceCall call, HeadWanted wanted, double[] rowNll,
        Func<PairChunk, double[], double[], (double[] Chosen, double[] Rejected)> sequenceGradient)
    {
        long rows = hidden.shape[0];
        long length = call.SequenceLength;
        long pairs = rows / length / 2;
        var isCounted = wanted.Any ? counted.data<bool>().ToArray() : null;
        var chunks = PairChunks(pairs, length, call.PairsPerChunk);
        return ChunkedHeadSweep.Sweep(hidden, weight, bias, targets, counted, new FusedCrossEntropyCall(), chunks, 2 * length * Math.Min(call.PairsPerChunk, pairs),
            call.Filter, wanted, Factors, new double[rows], rowNll, new double[rows]);

        void Factors(HeadSegment[] chunk, double[] rowLse, Span<double> f, Span<double> s, Span<double> a)
        {
            var (chosenRows, rejectedRows) = (chunk[0], chunk[1]);
            var pairChunk = new PairChunk((int)(chosenRows.Start / length), (int)(chosenRows.Length / length));
            var chosen = new double[pairChunk.Pairs];
            var rejected = new double[pairChunk.Pairs];
            for (int i = 0; i < pairChunk.Pairs; i++)
            {
                chosen[i] = SequenceSum(rowNll, pairChunk.FirstPair + i, length);
                rejected[i] = SequenceSum(rowNll, pairs + pairChunk.FirstPair + i, length);
            }
            var (dChosen, dRejected) = sequenceGradient(pairChunk, chosen, rejected);
            int offset = 0;
            foreach (var (segment, gradient) in new[] { (chosenRows, dChosen), (rejectedRows, dRejected) })
            {
                for (int i = 0; i < segment.Length; i++, offset++)
                {
                    if (!isCounted![segment.Start + i]) continue;
                    // log p = −NLL, so the cross-entropy's row gradient enters with −g.
                    f[offset] = a[offset] = -gradient[i / length];
                }
            }
        }
    }

    /// <summary>Chunks of <paramref name="pairsPerChunk"/> pairs: the chosen sequences' rows, then the rejected ones'.</summary>
    private static IEnumerable<HeadSegment[]> PairChunks(long pairs, long length, long pairsPerChunk)
    {
        for (long first = 0; first < pairs; first += pairsPerChunk)
        {
            long n = Math.Min(pairsPerChunk, pairs - first);
            yield return [new HeadSegment(first * length, n * length), new HeadSegment((pairs + first) * length, n * length)];
        }
    }

    /// <summary>Σ log p of sequence <paramref name="sequence"/>: minus its tokens' NLL, summed in order (uncounted rows hold 0).</summary>
    private static double SequenceSum(double[] rowNll, long sequence, long length)
    {
        double sum = 0;
        for (long t = sequence * length, end = t + length; t < end; t++) sum -= rowNll[t];
        return sum;
    }

    /// <summary>c with incoming ≈ c·anticipated (to <see cref="SameGradientTolerance"/> of the largest entry), or null.</summary>
    private static double? Proportion(double[] incoming, double[] anticipated)
    {
        double ab = 0, aa = 0, largest = 0;
        for (int i = 0; i < incoming.Length; i++)
        {
            ab += anticipated[i] * incoming[i];
            aa += anticipated[i] * anticipated[i];
            largest = Math.Max(largest, Math.Abs(incoming[i]));
        }
        double c = aa == 0 ? 1 : ab / aa;
        for (int i = 0; i < incoming.Length; i++)
        {
            if (!(Math.Abs(incoming[i] - c * anticipated[i]) <= SameGradientTolerance * largest)) return null;
        }
        return c;
    }

    private static HeadWanted WantedOf(Tensor hidden, Tensor weight, Tensor? bias) =>
        new(hidden.requires_grad, weight.requires_grad, bias is not null && bias.requires_grad);

    private static Tensor? OwnView(Tensor? stored) => stored is null ? null : PrecomputedGradient.OwnView(stored);

    private static Tensor Outer(Tensor? gradient) => gradient?.MoveToOuterDisposeScope()!;
}
