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

    /// <summary>Creates the loss with <paramref name="options"/> (smoothing, z-loss, ignore index).</summary>
    public FusedHeadTrainingLoss(CrossEntropyOptions? options = null) => head = new ChunkedLinearCrossEntropy(CausalLMTrainingLoss.NextToken(options));

    /// <inheritdoc />
    public (Tensor Loss, Tensor NllSum) Compute(Gpt model, TrainingBatch batch, long normalizer)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(batch);
        using var scope = NewDisposeScope();
        // Causal mode pairs hidden state t with label t+1: the unshifted labels go in as they are.
        var result = head.Compute(model.Hidden(batch.Ids), model.HeadWeight, batch.Labels, batch.LossMask, normalizer);
        return (result.Loss.MoveToOuterDisposeScope(), result.NllSum.MoveToOuterDisposeScope());
    }

    /// <inheritdoc />
    public long CountTokens(TrainingBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        return head.Options.CountTokens(batch.Labels, batch.LossMask);
    }

    /// <summary>Disposes the loss module.</summary>
    public void Dispose() => head.Dispose();
}
