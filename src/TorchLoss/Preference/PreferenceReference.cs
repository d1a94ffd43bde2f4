using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss;

/// <summary>
/// The reference model's per-sequence log-probabilities of the chosen and rejected answers, detached: what
/// DPO, hinge, IPO and robust DPO compare the policy against. Make it from the reference model's logits, or from
/// values cached in an earlier no-grad pass (so the reference model need not stay in memory during training).
/// </summary>
public sealed class PreferenceReference : IDisposable
{
    private PreferenceReference(SequenceLogProbs chosen, SequenceLogProbs rejected)
    {
        if (chosen.Count != rejected.Count)
            throw new ArgumentException($"The reference has {chosen.Count} chosen but {rejected.Count} rejected sequences; a pair needs one of each.", nameof(rejected));
        Chosen = chosen;
        Rejected = rejected;
    }

    /// <summary>The reference log-probabilities of the chosen answers, [B] each; detached.</summary>
    public SequenceLogProbs Chosen { get; }

    /// <summary>The reference log-probabilities of the rejected answers, [B] each; detached.</summary>
    public SequenceLogProbs Rejected { get; }

    /// <summary>A reference from log-probabilities already computed; they are detached (copies that share memory).</summary>
    /// <exception cref="ArgumentException">The two hold different numbers of sequences.</exception>
    public static PreferenceReference FromLogProbs(SequenceLogProbs chosen, SequenceLogProbs rejected)
    {
        ArgumentNullException.ThrowIfNull(chosen);
        ArgumentNullException.ThrowIfNull(rejected);
        return new PreferenceReference(chosen.Detach(), rejected.Detach());
    }

    /// <summary>
    /// A reference from cached values: Σ log p and the counted-token count of each chosen and rejected answer, all [B].
    /// The counts must be those of the policy's sequences (<see cref="PreferenceLoss"/> checks), which catches a cache
    /// read in the wrong order.
    /// </summary>
    /// <exception cref="ArgumentException">Shapes, dtypes or devices disagree, or a count is below 1.</exception>
    public static PreferenceReference FromValues(Tensor chosenSum, Tensor chosenTokenCount, Tensor rejectedSum, Tensor rejectedTokenCount) =>
        new(SequenceLogProbs.FromValues(chosenSum, chosenTokenCount), SequenceLogProbs.FromValues(rejectedSum, rejectedTokenCount));

    /// <summary>
    /// A reference from the reference model's logits for one concatenated batch: rows [0, B) the chosen answers, rows
    /// [B, 2B) the rejected ones of the same pairs (the layout of <see cref="PreferenceLoss.Compute(Tensor, Tensor, Tensor?, PreferenceReference?, long?)"/>).
    /// Runs without recording a graph.
    /// </summary>
    /// <param name="logits">The reference model's output [2B, T, V].</param>
    /// <param name="labels">Unshifted labels [2B, T].</param>
    /// <param name="completionMask">Optional bool [2B, T]: true = an answer token (the answer and its end-of-turn marker).</param>
    /// <param name="ignoreIndex">The label value that is not scored.</param>
    /// <param name="backend">Which implementation computes the log-probabilities.</param>
    /// <exception cref="ArgumentException">The inputs are invalid (as for <see cref="SequenceLogProbs.Compute(Tensor, Tensor, Tensor?, long, CrossEntropyBackend)"/>), or the batch has an odd number of rows.</exception>
    public static PreferenceReference FromLogits(
        Tensor logits, Tensor labels, Tensor? completionMask = null, long ignoreIndex = LossDefaults.IgnoreIndex, CrossEntropyBackend backend = CrossEntropyBackend.Auto)
    {
        using var noGrad = no_grad();
        using var all = SequenceLogProbs.Compute(logits, labels, completionMask, ignoreIndex, backend);
        var (chosen, rejected) = PreferenceLoss.Split(all, nameof(logits));
        return new PreferenceReference(chosen, rejected);
    }

    /// <summary>A reference from the reference model's logits for the chosen [B, T_c, V] and rejected [B, T_r, V] answers; runs without recording a graph.</summary>
    /// <exception cref="ArgumentException">The inputs are invalid, or the two batches hold different numbers of pairs.</exception>
    public static PreferenceReference FromLogits(
        Tensor chosenLogits, Tensor chosenLabels, Tensor rejectedLogits, Tensor rejectedLabels,
        Tensor? chosenMask = null, Tensor? rejectedMask = null, long ignoreIndex = LossDefaults.IgnoreIndex, CrossEntropyBackend backend = CrossEntropyBackend.Auto)
    {
        using var noGrad = no_grad();
        var chosen = SequenceLogProbs.Compute(chosenLogits, chosenLabels, chosenMask, ignoreIndex, backend, nameof(chosenLogits), nameof(chosenLabels), nameof(chosenMask));
        var rejected = SequenceLogProbs.Compute(rejectedLogits, rejectedLabels, rejectedMask, ignoreIndex, backend, nameof(rejectedLogits), nameof(rejectedLabels), nameof(rejectedMask));
        return new PreferenceReference(chosen, rejected);
    }

    /// <summary>Moves the tensors out of the current <see cref="DisposeScope"/>.</summary>
    public PreferenceReference MoveToOuterDisposeScope()
    {
        Chosen.MoveToOuterDisposeScope();
        Rejected.MoveToOuterDisposeScope();
        return this;
    }

    /// <summary>Disposes the tensors.</summary>
    public void Dispose()
    {
        Chosen.Dispose();
        Rejected.Dispose();
    }
}
