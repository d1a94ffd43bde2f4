using static TorchSharp.torch;

namespace TinyGpt;

/// <summary>
/// One micro-batch for <see cref="GptTrainer"/>: token ids [B, T] fed to the model, the same sequence as
/// unshifted labels [B, T] (-100 where nothing is learned) and an optional bool loss mask [B, T].
/// </summary>
/// <param name="Ids">Input token ids [B, T], int64.</param>
/// <param name="Labels">Unshifted labels [B, T]: usually <paramref name="Ids"/> with untrained positions set to -100.</param>
/// <param name="LossMask">Optional bool [B, T]; true = the token at that position is learned.</param>
public sealed record TrainingBatch(Tensor Ids, Tensor Labels, Tensor? LossMask = null) : IDisposable
{
    /// <summary>Disposes the tensors (a shared Ids/Labels tensor is disposed once).</summary>
    public void Dispose()
    {
        Ids.Dispose();
        if (!ReferenceEquals(Labels, Ids))
            Labels.Dispose();
        LossMask?.Dispose();
    }
}
