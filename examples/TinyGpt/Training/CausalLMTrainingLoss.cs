using TorchLoss;
using static TorchSharp.torch;

namespace TinyGpt;

/// <summary>
/// The trainer's default loss: TorchLoss's <see cref="TokenCrossEntropy"/> with <see cref="CrossEntropyOptions.Causal"/>
/// on the model's logits and unshifted labels.
/// </summary>
public sealed class CausalLMTrainingLoss : ITrainingLoss, IDisposable
{
    private readonly TokenCrossEntropy loss;

    /// <summary>Creates the loss with <paramref name="options"/> (smoothing, z-loss, ignore index); it is made causal here.</summary>
    public CausalLMTrainingLoss(CrossEntropyOptions? options = null) => loss = new TokenCrossEntropy(NextToken(options));

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
        return loss.Options.CountTokens(batch.Labels, batch.LossMask);
    }

    /// <summary><paramref name="options"/> (or the defaults) scoring position t against label t+1: the trainer's labels are unshifted.</summary>
    public static CrossEntropyOptions NextToken(CrossEntropyOptions? options) => (options ?? CrossEntropyOptions.Default) with { Causal = true };

    /// <summary>Disposes the loss module.</summary>
    public void Dispose() => loss.Dispose();
}
