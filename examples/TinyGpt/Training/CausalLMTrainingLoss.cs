using TorchLoss;
using static TorchSharp.torch;

namespace TinyGpt;

/// <summary>The trainer's default loss: TorchLoss's <see cref="CausalLMLoss"/> on the model's logits and unshifted labels.</summary>
public sealed class CausalLMTrainingLoss : ITrainingLoss, IDisposable
{
    private readonly CausalLMLoss loss;

    /// <summary>Creates the loss with <paramref name="options"/> (smoothing, z-loss, ignore index).</summary>
    public CausalLMTrainingLoss(CrossEntropyOptions? options = null) => loss = new CausalLMLoss(options);

    /// <inheritdoc />
    public (Tensor Loss, Tensor NllSum) Compute(Gpt model, TrainingBatch batch, long normalizer)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(batch);
        using var scope = NewDisposeScope();
        var logits = model.forward(batch.Ids);
        var result = loss.Compute(logits, batch.Labels, batch.LossMask, normalizer);
        return (result.Loss.MoveToOuterDisposeScope(), result.NllSum.MoveToOuterDisposeScope());
    }

    /// <inheritdoc />
    public long CountTokens(TrainingBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        return CausalLMLoss.CountTokens(batch.Labels, batch.LossMask, loss.Options.IgnoreIndex);
    }

    /// <summary>Disposes the loss module.</summary>
    public void Dispose() => loss.Dispose();
}
