using TinyGpt;
using TorchLoss;
using TorchLoss.Sft;
using static TorchSharp.torch;

namespace Preference;

/// <summary>
/// A fixed set of questions (the held-out ones, or some training ones) as preference pairs in one batch, with what the
/// reference (the SFT model) gives on them, so any policy can be measured against it: rewards, log-probabilities, KL
/// from the reference and greedy answers.
/// </summary>
public sealed class HeldOutSet : IDisposable
{
    private readonly PreferenceBatch batch;
    private readonly Tensor referenceLogits;
    private readonly Tensor answerPositions;
    private readonly PreferenceReference reference;
    private readonly IReadOnlyList<PreferencePair> pairs;
    private readonly IReadOnlyList<LetterQuestion> questions;
    private readonly CharTokenizer tokenizer;
    private readonly string endOfTurn;

    /// <summary>Collates the pairs and runs the reference model on them once.</summary>
    public HeldOutSet(IReadOnlyList<LetterQuestion> questions, IReadOnlyList<PreferencePair> pairs, Gpt referenceModel, CharTokenizer tokenizer, string endOfTurn)
    {
        ArgumentNullException.ThrowIfNull(referenceModel);
        this.questions = questions;
        this.pairs = pairs;
        this.tokenizer = tokenizer;
        this.endOfTurn = endOfTurn;
        using var scope = NewDisposeScope();
        batch = new PreferenceCollator(padTokenId: 0).Collate(pairs).MoveToOuterDisposeScope();
        referenceLogits = Logits(referenceModel).MoveToOuterDisposeScope();
        // Logits at t score the label at t+1: the positions that predict an answer token.
        answerPositions = batch.CompletionMask[.., 1..].MoveToOuterDisposeScope();
        reference = PreferenceReference.FromLogits(referenceLogits, batch.Labels, batch.CompletionMask).MoveToOuterDisposeScope();
    }

    /// <summary>Measures <paramref name="policy"/> at <paramref name="step"/>; rewards as <paramref name="loss"/> defines them (against the reference when <paramref name="withReference"/>).</summary>
    public Measurement Measure(Gpt policy, PreferenceLoss loss, bool withReference, int step)
    {
        ArgumentNullException.ThrowIfNull(loss);
        using var scope = NewDisposeScope();
        var logits = Logits(policy);
        using var result = loss.Compute(logits, batch.Labels, batch.CompletionMask, withReference ? reference : null);
        using var sums = SequenceLogProbs.Compute(logits, batch.Labels, batch.CompletionMask);
        var (chosen, rejected) = (sums.Sum[..pairs.Count].to(ScalarType.Float64), sums.Sum[pairs.Count..].to(ScalarType.Float64));
        var kl = InformationTheory.KlDivergence(logits[.., ..^1], referenceLogits[.., ..^1]).masked_select(answerPositions).mean();
        var (follows, otherEnd) = GreedyAnswers(policy);
        return new Measurement(
            step,
            result.RewardAccuracy.item<double>(),
            result.RewardMargin.item<double>(),
            chosen.mean().item<double>(),
            rejected.mean().item<double>(),
            chosen.gt(rejected).to(ScalarType.Float64).mean().item<double>(),
            kl.to(ScalarType.Float64).item<double>(),
            follows,
            otherEnd);
    }

    private Tensor Logits(Gpt model)
    {
        bool wasTraining = model.training;
        model.eval();
        try
        {
            using var noGrad = no_grad();
            return model.forward(batch.InputIds);
        }
        finally
        {
            model.train(wasTraining);
        }
    }

    /// <summary>Greedy answers to the held-out prompts (the ids generation sees): shares that are correct, and that are the other end's letter.</summary>
    private (double Follows, double OtherEnd) GreedyAnswers(Gpt policy)
    {
        var answers = GreedyDecoding.ContinueAll(policy, pairs.Select(p => p.PromptIds).ToList(), newTokens: 2, batchSize: 256)
            .Select(tokenizer.Decode).ToList();
        int follows = answers.Where((a, i) => a == questions[i].Correct + endOfTurn).Count();
        int otherEnd = answers.Where((a, i) => a == questions[i].Wrong + endOfTurn).Count();
        return ((double)follows / answers.Count, (double)otherEnd / answers.Count);
    }

    /// <summary>Disposes the batch and the reference's values.</summary>
    public void Dispose()
    {
        batch.Dispose();
        referenceLogits.Dispose();
        answerPositions.Dispose();
        reference.Dispose();
    }
}
