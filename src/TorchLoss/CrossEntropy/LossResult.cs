using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss;

/// <summary>
/// Everything one loss evaluation produced: the tensor to backpropagate and the detached totals a
/// metric needs (perplexity must use the unsmoothed NLL, token-weighted).
/// </summary>
public sealed class LossResult : IDisposable
{
    internal LossResult(Tensor loss, Tensor nllSum, Tensor tokenCount, Tensor zLossSum)
    {
        Loss = loss;
        NllSum = nllSum;
        TokenCount = tokenCount;
        ZLossSum = zLossSum;
        _tensors = new ResultTensors(loss, nllSum, tokenCount, zLossSum);
    }

    private readonly ResultTensors _tensors;

    /// <summary>What to backpropagate: the (smoothed) cross-entropy plus z-loss, reduced or normalised as configured.</summary>
    public Tensor Loss { get; }

    /// <summary>Σ of the unsmoothed negative log-likelihood over counted tokens; detached float64 scalar.</summary>
    public Tensor NllSum { get; }

    /// <summary>Number of counted tokens; int64 scalar.</summary>
    public Tensor TokenCount { get; }

    /// <summary>Σ of the z-loss terms (already weighted) over counted tokens; detached float64 scalar, 0 without z-loss.</summary>
    public Tensor ZLossSum { get; }

    /// <summary>Moves all tensors out of the current <see cref="DisposeScope"/>, e.g. to keep the result past a training step.</summary>
    public LossResult MoveToOuterDisposeScope()
    {
        _tensors.MoveToOuterDisposeScope();
        return this;
    }

    /// <summary>Disposes everything but <see cref="Loss"/> and returns it: what a module's <c>forward</c> hands back.</summary>
    internal Tensor TakeLoss() => _tensors.TakeFirst();

    /// <summary>Disposes the tensors.</summary>
    public void Dispose() => _tensors.Dispose();
}
