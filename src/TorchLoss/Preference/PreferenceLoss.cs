using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss;

/// <summary>
/// Preference optimisation: from the policy's logits for a chosen and a rejected answer to the same prompt (and, for
/// DPO, hinge, IPO and robust DPO, the reference model's log-probabilities of both) a loss that moves the policy toward
/// the chosen answer. The loss kinds and their formulas are listed on <see cref="PreferenceLossKind"/>; every convention
/// is written down in docs/preference.md.
/// </summary>
/// <example>
/// <code>
/// using var dpo = new PreferenceLoss(new PreferenceOptions { Loss = PreferenceLossKind.Dpo, Beta = 0.1 });
/// // batch.InputIds [2B, T]: rows [0, B) chosen, [B, 2B) rejected; batch.Labels and batch.CompletionMask alike.
/// using var reference = PreferenceReference.FromLogits(referenceModel.forward(batch.InputIds), batch.Labels, batch.CompletionMask);
/// using var result = dpo.Compute(policy.forward(batch.InputIds), batch.Labels, batch.CompletionMask, reference);
/// result.Loss.backward();
/// </code>
/// </example>
public sealed class PreferenceLoss : nn.Module<Tensor, Tensor, Tensor>
{
    /// <summary>Creates the module; options are validated here and fixed for its lifetime.</summary>
    /// <param name="options">Loss kind, β and the kind's parameters, reduction and backend; <see cref="PreferenceOptions.Default"/> when null.</param>
    /// <exception cref="ArgumentException">An option is out of range or belongs to another loss kind.</exception>
    public PreferenceLoss(PreferenceOptions? options = null) : base(nameof(PreferenceLoss))
    {
        Options = options ?? PreferenceOptions.Default;
        Options.Validate();
        TorchBackend.EnsureLoaded();
        RegisterComponents();
    }

    /// <summary>The options this module was built with.</summary>
    public PreferenceOptions Options { get; }

    /// <summary>
    /// The loss to backpropagate for a concatenated batch without a reference model: logits [2B, T, V] and labels [2B, T],
    /// rows [0, B) chosen and [B, 2B) rejected, every label not the ignore index scored. For the reference-free SimPO and ORPO.
    /// </summary>
    /// <exception cref="ArgumentException">The loss needs a reference model, or the inputs are invalid.</exception>
    public override Tensor forward(Tensor logits, Tensor labels) => Compute(logits, labels).TakeLoss();

    /// <summary>Computes the loss and the logged numbers for one concatenated batch: rows [0, B) chosen, rows [B, 2B) rejected, pair b = rows b and B + b.</summary>
    /// <param name="logits">The policy's output [2B, T, V]; position t scores label t+1.</param>
    /// <param name="labels">Unshifted labels [2B, T]; the ignore index marks tokens not scored.</param>
    /// <param name="completionMask">Optional bool [2B, T] aligned with the labels: true = an answer token (the answer and its end-of-turn marker).</param>
    /// <param name="reference">The reference model's log-probabilities of the same pairs; required by DPO, hinge, IPO and robust DPO, rejected by SimPO and ORPO.</param>
    /// <param name="normalizer">
    /// Optional number of pairs across all micro-batches of one optimiser step; the loss is then Σ pair losses / normalizer,
    /// so accumulated gradients equal the full batch's (with <see cref="nn.Reduction.Mean"/> or <see cref="nn.Reduction.Sum"/>, as in <see cref="TokenCrossEntropy"/>).
    /// </param>
    /// <exception cref="ArgumentException">Shapes, dtypes or devices disagree, a sequence has no answer token, the reference is missing, superfluous or of other sequences, or the normalizer is invalid.</exception>
    public PreferenceResult Compute(Tensor logits, Tensor labels, Tensor? completionMask = null, PreferenceReference? reference = null, long? normalizer = null)
    {
        using var scope = NewDisposeScope();
        var all = SequenceLogProbs.Compute(logits, labels, completionMask, Options.IgnoreIndex, Options.Backend, nameof(logits), nameof(labels), nameof(completionMask));
        var (chosen, rejected) = Split(all, nameof(logits));
        return Compute(chosen, rejected, reference, normalizer).MoveToOuterDisposeScope();
    }

    /// <summary>Computes the loss and the logged numbers from separate batches of the B chosen and the B rejected answers (their lengths may differ).</summary>
    /// <param name="chosenLogits">The policy's output for the chosen answers [B, T_c, V].</param>
    /// <param name="chosenLabels">Unshifted labels [B, T_c].</param>
    /// <param name="rejectedLogits">The policy's output for the rejected answers [B, T_r, V].</param>
    /// <param name="rejectedLabels">Unshifted labels [B, T_r].</param>
    /// <param name="chosenMask">Optional bool [B, T_c]: true = an answer token.</param>
    /// <param name="rejectedMask">Optional bool [B, T_r]: true = an answer token.</param>
    /// <param name="reference">The reference model's log-probabilities; see <see cref="Compute(Tensor, Tensor, Tensor?, PreferenceReference?, long?)"/>.</param>
    /// <param name="normalizer">Optional number of pairs across the micro-batches of one optimiser step.</param>
    /// <exception cref="ArgumentException">As for the concatenated form, or the two batches hold different numbers of pairs.</exception>
    public PreferenceResult Compute(
        Tensor chosenLogits, Tensor chosenLabels, Tensor rejectedLogits, Tensor rejectedLabels,
        Tensor? chosenMask = null, Tensor? rejectedMask = null, PreferenceReference? reference = null, long? normalizer = null)
    {
        using var scope = NewDisposeScope();
        var chosen = SequenceLogProbs.Compute(chosenLogits, chosenLabels, chosenMask, Options.IgnoreIndex, Options.Backend, nameof(chosenLogits), nameof(chosenLabels), nameof(chosenMask));
        var rejected = SequenceLogProbs.Compute(rejectedLogits, rejectedLabels, rejectedMask, Options.IgnoreIndex, Options.Backend, nameof(rejectedLogits), nameof(rejectedLabels), nameof(rejectedMask));
        return Compute(chosen, rejected, reference, normalizer).MoveToOuterDisposeScope();
    }

    /// <summary>Computes the loss and the logged numbers from the policy's per-sequence log-probabilities (see <see cref="SequenceLogProbs.Compute(Tensor, Tensor, Tensor?, long, CrossEntropyBackend)"/>).</summary>
    /// <param name="chosen">The policy's log-probabilities of the chosen answers, [B].</param>
    /// <param name="rejected">The policy's log-probabilities of the rejected answers, [B].</param>
    /// <param name="reference">The reference model's log-probabilities of the same pairs, or null for SimPO and ORPO.</param>
    /// <param name="normalizer">Optional number of pairs across the micro-batches of one optimiser step.</param>
    /// <exception cref="ArgumentException">The counts of pairs disagree, the reference is missing, superfluous or of other sequences (token counts differ), or the normalizer is invalid.</exception>
    public PreferenceResult Compute(SequenceLogProbs chosen, SequenceLogProbs rejected, PreferenceReference? reference = null, long? normalizer = null) =>
        Compute(chosen, rejected, reference, normalizer, chosen?.Sum.dtype ?? ScalarType.Float32);

    /// <summary><see cref="Compute(SequenceLogProbs, SequenceLogProbs, PreferenceReference?, long?)"/> with the loss given back in <paramref name="lossType"/>.</summary>
    internal PreferenceResult Compute(SequenceLogProbs chosen, SequenceLogProbs rejected, PreferenceReference? reference, long? normalizer, ScalarType lossType)
    {
        ArgumentNullException.ThrowIfNull(chosen);
        ArgumentNullException.ThrowIfNull(rejected);
        if (chosen.Count != rejected.Count)
            throw new ArgumentException($"There are {chosen.Count} chosen but {rejected.Count} rejected sequences; a pair needs one of each.", nameof(rejected));
        if (!InputChecks.SameDevice(chosen.Sum, rejected.Sum))
            throw new ArgumentException($"The rejected log-probabilities are on {rejected.Sum.device} but the chosen ones on {chosen.Sum.device}.", nameof(rejected));
        CheckReference(reference, chosen.TokenCount, rejected.TokenCount);
        CheckNormalizer(normalizer);

        using var scope = NewDisposeScope();
        var score = Options.ResolvedScore;
        var policyChosen = chosen.Select(score).to(ScalarType.Float64);
        var policyRejected = rejected.Select(score).to(ScalarType.Float64);
        var (pairLosses, chosenRewards, rejectedRewards) = PreferenceComputation.PairLosses(
            policyChosen, policyRejected,
            reference?.Chosen.Select(score).detach().to(ScalarType.Float64, policyChosen.device),
            reference?.Rejected.Select(score).detach().to(ScalarType.Float64, policyChosen.device),
            Options);
        var loss = Options.Reduction switch
        {
            nn.Reduction.None => pairLosses,
            _ when normalizer is not null => pairLosses.sum() / (double)normalizer.Value,
            nn.Reduction.Sum => pairLosses.sum(),
            _ => pairLosses.sum() / (double)chosen.Count,
        };
        var result = new PreferenceResult(
            loss.to(lossType),
            pairLosses.detach(),
            chosenRewards.detach(),
            rejectedRewards.detach(),
            policyChosen.detach(),
            policyRejected.detach(),
            chosen.Mean.detach().to(ScalarType.Float64).neg());
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>Rows [0, B) and [B, 2B) of concatenated log-probabilities, as the chosen and the rejected answers.</summary>
    internal static (SequenceLogProbs Chosen, SequenceLogProbs Rejected) Split(SequenceLogProbs all, string logitsName)
    {
        long rows = all.Count;
        if (rows % 2 != 0)
            throw new ArgumentException($"A concatenated preference batch holds the B chosen then the B rejected sequences, so an even number of rows; {logitsName} has {rows}.", logitsName);
        long pairs = rows / 2;
        return (new SequenceLogProbs(all.Sum[..(int)pairs], all.TokenCount[..(int)pairs]),
                new SequenceLogProbs(all.Sum[(int)pairs..], all.TokenCount[(int)pairs..]));
    }

    /// <summary>The reference is there exactly when the loss needs one, and scored the same pairs (token counts [B] of each side).</summary>
    internal void CheckReference(PreferenceReference? reference, Tensor chosenCounts, Tensor rejectedCounts)
    {
        if (!Options.NeedsReference)
        {
            if (reference is not null)
                throw new ArgumentException($"{Options.Loss} is reference-free; pass no reference (its log-probabilities would be ignored).", nameof(reference));
            return;
        }
        if (reference is null)
            throw new ArgumentException($"{Options.Loss} compares the policy with a reference model: pass its log-probabilities (PreferenceReference.FromLogits or FromValues).", nameof(reference));
        if (reference.Chosen.Count != chosenCounts.shape[0])
            throw new ArgumentException($"The reference holds {reference.Chosen.Count} pairs but the policy {chosenCounts.shape[0]}.", nameof(reference));
        CheckSameCounts(reference.Chosen, chosenCounts, "chosen");
        CheckSameCounts(reference.Rejected, rejectedCounts, "rejected");
    }

    /// <summary>The reference scored the same tokens as the policy: a cache read out of order or another mask shows up here.</summary>
    private static void CheckSameCounts(SequenceLogProbs reference, Tensor policyCounts, string side)
    {
        using var scope = NewDisposeScope();
        var differ = reference.TokenCount.to(policyCounts.device).ne(policyCounts);
        if (!differ.any().item<bool>()) return;
        long row = differ.nonzero()[0, 0].item<long>();
        throw new ArgumentException(
            $"The reference's {side} sequence {row} has {reference.TokenCount[row].item<long>()} counted tokens but the policy's has {policyCounts[row].item<long>()}: " +
            "the reference log-probabilities must be of the same sequences and masks.", "reference");
    }

    internal void CheckNormalizer(long? normalizer)
    {
        if (normalizer is null) return;
        if (normalizer <= 0)
            throw new ArgumentException($"normalizer must be a positive number of pairs, got {normalizer}.", nameof(normalizer));
        if (Options.Reduction == nn.Reduction.None)
            throw new ArgumentException("normalizer divides the summed pair losses; it cannot be combined with Reduction.None.", nameof(normalizer));
    }
}
