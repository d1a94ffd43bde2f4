using TorchLoss.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss;

/// <summary>
/// The output head and a preference loss in one step: from the final hidden states of a concatenated preference batch
/// and the head's weight, the loss, metrics and gradients of <see cref="PreferenceLoss"/> on <c>hidden·weightᵀ + bias</c>,
/// without ever materialising the [2B, T, V] logits. Chunks of whole pairs go through the chunked-head machinery of
/// <see cref="ChunkedLinearCrossEntropy"/>: each chunk's logits become per-token log-probabilities, its pairs' sequence
/// log-probabilities and their share of the loss's gradient, and that gradient is folded into the gradients of hidden,
/// weight and bias before the next chunk reuses the buffer; a reduced loss needs one sweep.
/// </summary>
/// <remarks>
/// Runs on the CPU with float32 or float64 (float16/bfloat16 inputs are computed in float32). The conventions are
/// <see cref="PreferenceLoss"/>'s: rows [0, B) chosen and [B, 2B) rejected, unshifted labels (position t scores label t+1),
/// a completion mask aligned with the labels. Only scored positions (answer tokens, not prompt or padding) go through the
/// head, so their share of the batch sets the time. A chunk holds at least one pair, up to 2·T·V logits (T = 256,
/// V = 50,257 in float32: 103 MB): memory grows with the sequence length. With <see cref="nn.Reduction.None"/>, or when the
/// loss is not backpropagated alone, backward sweeps the chunks a second time.
/// </remarks>
/// <example>
/// <code>
/// using var head = new ChunkedLinearPreferenceLoss(new PreferenceOptions { Loss = PreferenceLossKind.SimPo, Beta = 2.0, Gamma = 0.5 });
/// using var result = head.Compute(hidden, lmHead.weight!, batch.Labels, batch.CompletionMask);   // hidden [2B, T, d]
/// result.Loss.backward();
/// </code>
/// </example>
public sealed class ChunkedLinearPreferenceLoss : nn.Module<Tensor, Tensor, Tensor, Tensor>
{
    private readonly PreferenceLoss pairLoss;

    /// <summary>Creates the module; options are validated here and fixed for its lifetime.</summary>
    /// <param name="options">
    /// Loss kind, β and the kind's parameters, reduction and ignore index; <see cref="PreferenceOptions.Default"/> when null.
    /// <see cref="PreferenceOptions.Backend"/> does not apply.
    /// </param>
    /// <param name="chunkPairs">
    /// Pairs per chunk; null packs consecutive pairs while their scored positions' logits fit in
    /// <see cref="ChunkedLinearCrossEntropy.AutomaticChunkBytes"/> or in 2·T rows, whichever is more, and takes at least one pair.
    /// </param>
    /// <param name="gradientFilter">
    /// The gradient filter τ in [0, 1) of <see cref="ChunkedLinearCrossEntropy"/> (<see cref="ChunkedLinearCrossEntropy.DefaultGradientFilter"/>
    /// by default): softmax values below τ/V in every row of a chunk skip their vocabulary column in the backward matmuls.
    /// 0 is the exact mode. The loss and the metrics never change.
    /// </param>
    /// <exception cref="ArgumentException">An option is out of range, <paramref name="chunkPairs"/> is not positive or <paramref name="gradientFilter"/> is outside [0, 1).</exception>
    public ChunkedLinearPreferenceLoss(PreferenceOptions? options = null, int? chunkPairs = null, double gradientFilter = ChunkedLinearCrossEntropy.DefaultGradientFilter)
        : base(nameof(ChunkedLinearPreferenceLoss))
    {
        Options = options ?? PreferenceOptions.Default;
        Options.Validate();
        if (chunkPairs is <= 0)
            throw new ArgumentException($"chunkPairs must be a positive number of pairs, got {chunkPairs}.", nameof(chunkPairs));
        if (!(gradientFilter >= 0 && gradientFilter < 1))
            throw new ArgumentException($"gradientFilter must be in [0, 1) (0 = exact), got {gradientFilter}.", nameof(gradientFilter));
        ChunkPairs = chunkPairs;
        GradientFilter = gradientFilter;
        pairLoss = new PreferenceLoss(Options);
        TorchBackend.EnsureLoaded();
        RegisterComponents();
    }

    /// <summary>The options this module was built with.</summary>
    public PreferenceOptions Options { get; }

    /// <summary>Pairs per chunk, or null for automatic.</summary>
    public int? ChunkPairs { get; }

    /// <summary>The gradient filter τ (0 = exact); see the constructor.</summary>
    public double GradientFilter { get; }

    /// <summary>
    /// The loss to backpropagate for a concatenated batch without a reference model (SimPO, ORPO): hidden [2B, T, d], head
    /// <paramref name="weight"/> [V, d] and unshifted <paramref name="labels"/> [2B, T], every label not the ignore index scored.
    /// </summary>
    /// <exception cref="ArgumentException">The loss needs a reference model, or the inputs are invalid.</exception>
    public override Tensor forward(Tensor hidden, Tensor weight, Tensor labels) => Compute(hidden, weight, labels).TakeLoss();

    /// <summary>
    /// Computes the loss and the logged numbers (those of <see cref="PreferenceLoss.Compute(Tensor, Tensor, Tensor?, PreferenceReference?, long?)"/>
    /// on the logits <c>hidden·weightᵀ + bias</c>) for one concatenated batch: rows [0, B) chosen, rows [B, 2B) rejected, pair b = rows b and B + b.
    /// </summary>
    /// <param name="hidden">The policy's final hidden states [2B, T, d]; position t scores label t+1.</param>
    /// <param name="weight">The output head's weight [V, d] (an <c>nn.Linear(d, V)</c>'s weight, or tied embeddings), of hidden's dtype.</param>
    /// <param name="labels">Unshifted labels [2B, T]; the ignore index marks tokens not scored.</param>
    /// <param name="completionMask">Optional bool [2B, T] aligned with the labels: true = an answer token (the answer and its end-of-turn marker).</param>
    /// <param name="reference">The reference model's log-probabilities of the same pairs; required by DPO, hinge, IPO and robust DPO, rejected by SimPO and ORPO.</param>
    /// <param name="normalizer">Optional number of pairs across all micro-batches of one optimiser step; the loss is then Σ pair losses / normalizer.</param>
    /// <param name="bias">Optional head bias [V].</param>
    /// <exception cref="ArgumentException">
    /// Shapes, dtypes or devices disagree, a label is out of range, a sequence has no answer token, the batch has an odd number
    /// of rows, the reference is missing, superfluous or of other sequences, or the normalizer is invalid.
    /// </exception>
    public PreferenceResult Compute(
        Tensor hidden, Tensor weight, Tensor labels, Tensor? completionMask = null, PreferenceReference? reference = null, long? normalizer = null, Tensor? bias = null)
    {
        InputChecks.CheckHead(hidden, weight, bias, nameof(ChunkedLinearPreferenceLoss));
        InputChecks.CheckSequenceBatch(hidden, nameof(hidden), "d");
        ArgumentNullException.ThrowIfNull(labels);
        InputChecks.CheckMask(completionMask, hidden.shape[..2], labels, nameof(completionMask), $"{nameof(hidden)} positions");
        if (hidden.shape[0] % 2 != 0)
            throw new ArgumentException($"A concatenated preference batch holds the B chosen then the B rejected sequences, so an even number of rows; {nameof(hidden)} has {hidden.shape[0]}.", nameof(hidden));
        pairLoss.CheckNormalizer(normalizer);
        using var scope = NewDisposeScope();
        long classes = weight.shape[0];
        long width = weight.shape[1];
        long sequences = hidden.shape[0];
        long length = hidden.shape[1];
        long pairs = sequences / 2;
        var spec = new TargetSpec
        {
            ScoresName = nameof(hidden),
            TargetName = nameof(labels),
            Classes = classes,
            ClassesFrom = $"weight shape {InputChecks.Shape(weight)}",
            IgnoreIndex = Options.IgnoreIndex,
            Causal = true,
        };
        var targets = TargetPreparation.Prepare(hidden, labels, completionMask, spec);
        var counted = targets.Counted.contiguous();
        var tokenCount = counted.reshape(sequences, length).sum(1, type: ScalarType.Int64);
        SequenceLogProbs.CheckEverySequenceCounted(tokenCount, nameof(labels), nameof(completionMask));
        pairLoss.CheckReference(reference, tokenCount[..(int)pairs], tokenCount[(int)pairs..]);

        var computeType = hidden.dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;
        // The last position of each row is uncounted: the kernel skips it, so hidden needs no slicing copy.
        var h = hidden.reshape(-1, width).to(computeType).contiguous();
        var w = weight.to(computeType);
        var b = bias?.to(computeType);
        long elementBytes = computeType == ScalarType.Float64 ? 8 : 4;
        // Automatic chunks: as many pairs as fit in the automatic budget's logit rows, or in one full pair's 2·T rows if
        // more; only scored rows take a row, so a chunk usually holds more than one pair.
        long chunkRows = Math.Max(2 * length, ChunkedLinearCrossEntropy.AutomaticChunkBytes / (classes * elementBytes));
        bool needGradient = is_grad_enabled() && (h.requires_grad || w.requires_grad || (b is not null && b.requires_grad));
        var call = new ChunkedSequenceCall
        {
            SequenceLength = length,
            PairsPerChunk = ChunkPairs,
            RowsPerChunk = chunkRows,
            Filter = GradientFilter,
            NeedGradient = needGradient,
            Anticipated = needGradient ? AnticipatedGradient(tokenCount, reference, normalizer, pairs) : null,
        };
        var sums = ChunkedLinearSequenceLogProbFunction.Apply(h, w, b, targets.Target.contiguous(), counted, call);
        var (chosen, rejected) = PreferenceLoss.Split(new SequenceLogProbs(sums, tokenCount), nameof(hidden));
        return pairLoss.Compute(chosen, rejected, reference, normalizer, hidden.dtype).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// ∂loss/∂Σ log p of a chunk's pairs, as backward will send it for a reduced loss (null for <see cref="nn.Reduction.None"/>,
    /// whose per-pair factors only backward knows): the pair formulas of <see cref="PreferenceComputation"/> differentiated on
    /// the chunk's pairs alone, which is exact because each pair's loss depends on its own two sequences only.
    /// </summary>
    private PairGradient? AnticipatedGradient(Tensor tokenCount, PreferenceReference? reference, long? normalizer, long pairs)
    {
        if (Options.Reduction == nn.Reduction.None) return null;
        double pairFactor = normalizer is { } n ? 1.0 / n : Options.Reduction == nn.Reduction.Sum ? 1 : 1.0 / pairs;
        var score = Options.ResolvedScore;
        var counts = tokenCount.to(ScalarType.Float64).data<double>().ToArray();
        double[]? Values(SequenceLogProbs? side) => side?.Select(score).detach().to(ScalarType.Float64).cpu().data<double>().ToArray();
        var referenceChosen = Values(reference?.Chosen);
        var referenceRejected = Values(reference?.Rejected);
        return (first, chosenSums, rejectedSums) =>
        {
            using var scope = NewDisposeScope();
            using var grad = enable_grad();
            int n = chosenSums.Length;
            var chosenSum = tensor(chosenSums, ScalarType.Float64).requires_grad_(true);
            var rejectedSum = tensor(rejectedSums, ScalarType.Float64).requires_grad_(true);
            Tensor Score(Tensor sum, int offset) => score == SequenceScore.Mean ? sum / tensor(counts[offset..(offset + n)], ScalarType.Float64) : sum;
            Tensor? Reference(double[]? values) => values is null ? null : tensor(values[first..(first + n)], ScalarType.Float64);
            var (losses, _, _) = PreferenceComputation.PairLosses(
                Score(chosenSum, first), Score(rejectedSum, (int)pairs + first), Reference(referenceChosen), Reference(referenceRejected), Options);
            (losses.sum() * pairFactor).backward();
            return (chosenSum.grad!.data<double>().ToArray(), rejectedSum.grad!.data<double>().ToArray());
        };
    }
}
