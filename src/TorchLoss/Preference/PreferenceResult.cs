using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss;

/// <summary>
/// Everything one preference-loss evaluation produced: the tensor to backpropagate and, detached in float64, the
/// per-pair numbers TRL logs. Per-pair tensors are [B]; to merge micro-batches of one optimiser step concatenate them
/// (or weight <see cref="RewardAccuracy"/> and <see cref="RewardMargin"/> by <see cref="PairCount"/>).
/// </summary>
public sealed class PreferenceResult : IDisposable
{
    internal PreferenceResult(Tensor loss, Tensor pairLosses, Tensor chosenRewards, Tensor rejectedRewards, Tensor chosenLogProbs, Tensor rejectedLogProbs, Tensor chosenNll)
    {
        Loss = loss;
        PairLosses = pairLosses;
        ChosenRewards = chosenRewards;
        RejectedRewards = rejectedRewards;
        ChosenLogProbs = chosenLogProbs;
        RejectedLogProbs = rejectedLogProbs;
        ChosenNll = chosenNll;
        var difference = chosenRewards - rejectedRewards;
        RewardAccuracy = chosenRewards.gt(rejectedRewards).to(ScalarType.Float64).mean();
        RewardMargin = difference.mean();
        difference.Dispose();
        PairCount = tensor(pairLosses.shape[0], ScalarType.Int64);
    }

    /// <summary>What to backpropagate: the per-pair losses reduced or normalised as configured.</summary>
    public Tensor Loss { get; }

    /// <summary>Each pair's loss (SimPO's NLL term and ORPO's included), [B]; detached float64.</summary>
    public Tensor PairLosses { get; }

    /// <summary>β·(π_c − π_ref,c) per pair (β·π_c for the reference-free SimPO and ORPO), on the score the loss compares; [B], detached float64.</summary>
    public Tensor ChosenRewards { get; }

    /// <summary>β·(π_r − π_ref,r) per pair (β·π_r for SimPO and ORPO); [B], detached float64.</summary>
    public Tensor RejectedRewards { get; }

    /// <summary>The policy's log-probabilities of the chosen answers, on the score the loss compares (sum or mean); [B], detached float64.</summary>
    public Tensor ChosenLogProbs { get; }

    /// <summary>The policy's log-probabilities of the rejected answers, on the score the loss compares; [B], detached float64.</summary>
    public Tensor RejectedLogProbs { get; }

    /// <summary>The chosen answers' mean negative log-likelihood per token, −Σ log p / count; [B], detached float64.</summary>
    public Tensor ChosenNll { get; }

    /// <summary>The fraction of pairs whose chosen reward exceeds the rejected one (ties count as wrong, as in TRL); float64 scalar.</summary>
    public Tensor RewardAccuracy { get; }

    /// <summary>The mean over pairs of chosen minus rejected reward; float64 scalar.</summary>
    public Tensor RewardMargin { get; }

    /// <summary>The number of pairs B; int64 scalar.</summary>
    public Tensor PairCount { get; }

    private ResultTensors Tensors => new(Loss, PairLosses, ChosenRewards, RejectedRewards, ChosenLogProbs, RejectedLogProbs, ChosenNll, RewardAccuracy, RewardMargin, PairCount);

    /// <summary>Moves all tensors out of the current <see cref="DisposeScope"/>, e.g. to keep the result past a training step.</summary>
    public PreferenceResult MoveToOuterDisposeScope()
    {
        Tensors.MoveToOuterDisposeScope();
        return this;
    }

    /// <summary>Disposes everything but <see cref="Loss"/> and returns it: what the module's <c>forward</c> hands back.</summary>
    internal Tensor TakeLoss() => Tensors.TakeFirst();

    /// <summary>Disposes the tensors.</summary>
    public void Dispose() => Tensors.Dispose();
}
