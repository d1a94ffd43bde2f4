using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss;

/// <summary>
/// Per-sequence log-probabilities of a causal language model: for each row b of logits [B, T, V] and unshifted
/// labels [B, T], <see cref="Sum"/>[b] = Σ log p(label[t+1] | logits[t]) over the counted tokens, <see cref="Mean"/>[b]
/// = <see cref="Sum"/>[b] / <see cref="TokenCount"/>[b]. A label is counted when it is not the ignore index and, if a
/// completion mask is given, its mask entry is true (the mask is aligned with the labels, as in a causal <see cref="TokenCrossEntropy"/>).
/// </summary>
/// <remarks>
/// On contiguous CPU float32 logits (<see cref="CrossEntropyBackend.Auto"/>) the fused cross-entropy kernel computes one
/// log-sum-exp per position and writes the gradient in the same pass, so no [B, T, V] log-softmax is ever stored; elsewhere
/// libtorch's log-softmax and gather. Per-token values are summed in float64 either way and given back in the logits' dtype
/// (float32 for half and bfloat16).
/// </remarks>
/// <example>
/// <code>
/// using var logps = SequenceLogProbs.Compute(logits, ids, completionMask);   // logits [B, T, V], ids and mask [B, T]
/// Tensor perSequence = logps.Sum;   // differentiable [B]
/// </code>
/// </example>
public sealed class SequenceLogProbs : IDisposable
{
    internal SequenceLogProbs(Tensor sum, Tensor tokenCount)
    {
        Sum = sum;
        TokenCount = tokenCount;
        Mean = sum / tokenCount.to(sum.dtype);
    }

    /// <summary>Σ log p over each sequence's counted tokens, [B]; carries the graph of the logits it came from.</summary>
    public Tensor Sum { get; }

    /// <summary><see cref="Sum"/> divided by <see cref="TokenCount"/>: the length-normalised log-probability, [B].</summary>
    public Tensor Mean { get; }

    /// <summary>How many tokens of each sequence are counted, [B] int64 (every one ≥ 1).</summary>
    public Tensor TokenCount { get; }

    /// <summary>The number of sequences B.</summary>
    public long Count => Sum.shape[0];

    /// <summary>
    /// Computes the per-sequence log-probabilities.
    /// </summary>
    /// <param name="logits">Model output [B, T, V]; position t scores label t+1. Half and bfloat16 are computed in float32.</param>
    /// <param name="labels">The token sequence [B, T], unshifted, of an integer dtype; <paramref name="ignoreIndex"/> marks tokens not scored.</param>
    /// <param name="completionMask">Optional bool [B, T] aligned with <paramref name="labels"/>: true = this token is scored (the answer and its end-of-turn marker).</param>
    /// <param name="ignoreIndex">The label value that is not counted.</param>
    /// <param name="backend">Which implementation computes the per-token log-probabilities; see <see cref="CrossEntropyBackend"/>.</param>
    /// <exception cref="ArgumentException">
    /// Shapes, dtypes or devices disagree, a label is outside [0, V) and not the ignore index, or a sequence has no counted
    /// token (its mean would be 0/0, and a preference pair with an empty side trains nothing).
    /// </exception>
    public static SequenceLogProbs Compute(
        Tensor logits, Tensor labels, Tensor? completionMask = null, long ignoreIndex = LossDefaults.IgnoreIndex, CrossEntropyBackend backend = CrossEntropyBackend.Auto)
    {
        return Compute(logits, labels, completionMask, ignoreIndex, backend, nameof(logits), nameof(labels), nameof(completionMask));
    }

    /// <summary><see cref="Compute(Tensor, Tensor, Tensor?, long, CrossEntropyBackend)"/> with the argument names its messages use.</summary>
    internal static SequenceLogProbs Compute(
        Tensor logits, Tensor labels, Tensor? completionMask, long ignoreIndex, CrossEntropyBackend backend, string logitsName, string labelsName, string maskName)
    {
        InputChecks.CheckLogits(logits, logitsName);
        InputChecks.CheckSequenceBatch(logits, logitsName, "V");
        if (!Enum.IsDefined(backend))
            throw new ArgumentException($"Unknown cross-entropy backend {backend}.", nameof(backend));
        ArgumentNullException.ThrowIfNull(labels, labelsName);
        // Checked here as well so that the message names the completion mask, not the cross-entropy's loss mask.
        InputChecks.CheckMask(completionMask, logits.shape[..2], labels, maskName, $"{logitsName} positions");
        using var scope = NewDisposeScope();
        long classes = logits.shape[2];
        var spec = new TargetSpec
        {
            ScoresName = logitsName,
            TargetName = labelsName,
            Classes = classes,
            ClassesFrom = $"{logitsName} shape {InputChecks.Shape(logits)}",
            IgnoreIndex = ignoreIndex,
            Causal = true,
        };
        var targets = TargetPreparation.Prepare(logits, labels, completionMask, spec);
        var counted = targets.Counted.reshape(logits.shape[0], logits.shape[1]);
        var tokenCount = counted.sum(1, type: ScalarType.Int64);
        CheckEverySequenceCounted(tokenCount, labelsName, maskName);
        var tokenLogProbs = SequenceLogProbComputation.TokenLogProbs(logits.reshape(-1, classes), targets, backend)
            .reshape(logits.shape[0], logits.shape[1]);
        var outputType = tokenLogProbs.dtype;
        var sum = tokenLogProbs.to(ScalarType.Float64).sum(1).to(outputType);
        var result = new SequenceLogProbs(sum, tokenCount);
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Log-probabilities computed elsewhere, e.g. a reference model's, cached: <paramref name="sum"/> [B] floating and
    /// <paramref name="tokenCount"/> [B] integer, every count ≥ 1. The tensors are copied, detached.
    /// </summary>
    /// <exception cref="ArgumentException">Shapes, dtypes or devices disagree, or a count is below 1.</exception>
    public static SequenceLogProbs FromValues(Tensor sum, Tensor tokenCount)
    {
        ArgumentNullException.ThrowIfNull(sum);
        ArgumentNullException.ThrowIfNull(tokenCount);
        if (!sum.is_floating_point() || sum.dim() != 1)
            throw new ArgumentException($"sum must be a floating [B] tensor, got {sum.dtype} of shape {InputChecks.Shape(sum)}.", nameof(sum));
        InputChecks.CheckIntegerTarget(tokenCount, nameof(tokenCount));
        if (!tokenCount.shape.SequenceEqual(sum.shape))
            throw new ArgumentException($"tokenCount shape {InputChecks.Shape(tokenCount)} does not match sum shape {InputChecks.Shape(sum)}.", nameof(tokenCount));
        if (!InputChecks.SameDevice(sum, tokenCount))
            throw new ArgumentException($"tokenCount is on {tokenCount.device} but sum is on {sum.device}.", nameof(tokenCount));
        using var scope = NewDisposeScope();
        var counts = tokenCount.to(ScalarType.Int64);
        CheckEverySequenceCounted(counts, nameof(tokenCount), nameof(tokenCount));
        return new SequenceLogProbs(sum.detach().clone(), counts.clone()).MoveToOuterDisposeScope();
    }

    /// <summary>A sequence with no counted token has no mean and, in a preference pair, nothing to compare: reject it by row.</summary>
    internal static void CheckEverySequenceCounted(Tensor tokenCount, string labelsName, string maskName)
    {
        var empty = tokenCount.lt(1);
        if (!empty.any().item<bool>()) return;
        long row = empty.nonzero()[0, 0].item<long>();
        throw new ArgumentException(
            $"Sequence {row} has no counted token: every label after the first is the ignore index or masked out by {maskName}, so it has no log-probability to compare. " +
            $"Check {labelsName} and {maskName} (the mask must cover the answer and its end-of-turn marker).",
            labelsName);
    }

    /// <summary>These values without their graph (a copy that shares memory): what a reference model contributes.</summary>
    public SequenceLogProbs Detach() => new(Sum.detach(), TokenCount.alias());

    /// <summary>The sum or the mean, as <paramref name="score"/> says.</summary>
    internal Tensor Select(SequenceScore score) => score == SequenceScore.Mean ? Mean : Sum;

    /// <summary>Moves the tensors out of the current <see cref="DisposeScope"/>.</summary>
    public SequenceLogProbs MoveToOuterDisposeScope()
    {
        new ResultTensors(Sum, Mean, TokenCount).MoveToOuterDisposeScope();
        return this;
    }

    /// <summary>Disposes the tensors.</summary>
    public void Dispose() => new ResultTensors(Sum, Mean, TokenCount).Dispose();
}
