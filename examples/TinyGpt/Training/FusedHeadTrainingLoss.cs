using TorchLoss;
using static TorchSharp.torch;

namespace TinyGpt;

/// <summary>
/// The head and the loss fused: TorchLoss's <see cref="ChunkedLinearCrossEntropy"/> on the model's final hidden
/// states and its (tied) head weight, so the [B, T, V] logits are never materialised. Same loss and gradients as
/// <see cref="CausalLMTrainingLoss"/>; worth it when the vocabulary is large (GPT-2's 50,257 tokens).
/// </summary>
public sealed class FusedHeadTrainingLoss : ITrainingLoss, IDisposable
{
    private readonly ChunkedLinearCrossEntropy head;
    private readonly CausalLMLoss counter;

    /// <summary>Creates the loss with <paramref name="options"/> (smoothing, z-loss, ignore index).</summary>
    public FusedHeadTrainingLoss(CrossEntropyOptions? options = null)
    {
        head = new ChunkedLinearCrossEntropy(options);
        counter = new CausalLMLoss(options);
    }

    /// <inheritdoc />
    public (Tensor Loss, Tensor NllSum) Compute(Gpt model, TrainingBatch batch, long normalizer)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(batch);
        using var scope = NewDisposeScope();
        // Position t predicts token t+1: drop the last hidden state and the first label (a copy of B·T·D values, not of B·T·V).
        var hidden = model.Hidden(batch.Ids)[.., ..^1, ..];
        var targets = batch.Labels[.., 1..];
        var mask = batch.LossMask?[.., 1..];
        var result = head.Compute(hidden, model.HeadWeight, targets, lossMask: mask, normalizer: normalizer);
        return (result.Loss.MoveToOuterDisposeScope(), result.NllSum.MoveToOuterDisposeScope());
    }

    /// <inheritdoc />
    public long CountTokens(TrainingBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        return counter.CountTokens(batch.Labels, batch.LossMask);
    }

    /// <summary>Disposes the loss modules.</summary>
    public void Dispose()
    {
        head.Dispose();
        counter.Dispose();
    }
}
