using static TorchSharp.torch;

namespace TinyGpt;

/// <summary>
/// The one place where the model's head meets the loss: runs <see cref="Gpt"/> on a micro-batch and returns
/// what to backpropagate. Swap it to compare losses or to fuse the head with the cross-entropy.
/// </summary>
public interface ITrainingLoss
{
    /// <summary>
    /// The loss of <paramref name="batch"/> as a share of a step that counts <paramref name="normalizer"/> tokens
    /// (Σ over the step's micro-batches of per-token losses / normalizer), and the detached, unsmoothed Σ NLL
    /// of the batch's counted tokens (float64 scalar) for metrics.
    /// </summary>
    (Tensor Loss, Tensor NllSum) Compute(Gpt model, TrainingBatch batch, long normalizer);

    /// <summary>How many tokens <paramref name="batch"/> contributes to the loss.</summary>
    long CountTokens(TrainingBatch batch);
}
