using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss.Sft;

/// <summary>A padded batch from <see cref="SftCollator"/>: hand <see cref="InputIds"/> to the model and <see cref="Labels"/> to a <see cref="TokenCrossEntropy"/> with <see cref="CrossEntropyOptions.Causal"/> set.</summary>
public sealed class SftBatch : IDisposable
{
    internal SftBatch(Tensor inputIds, Tensor labels, Tensor attentionMask, long trainedTokenCount)
    {
        InputIds = inputIds;
        Labels = labels;
        AttentionMask = attentionMask;
        TrainedTokenCount = trainedTokenCount;
    }

    /// <summary>Token ids [B, T], int64; padding positions hold the pad id.</summary>
    public Tensor InputIds { get; }

    /// <summary>Unshifted labels [B, T], int64; untrained and padding positions hold <see cref="SftExample.IgnoreIndex"/>.</summary>
    public Tensor Labels { get; }

    /// <summary>[B, T] bool: true for real tokens, false for padding.</summary>
    public Tensor AttentionMask { get; }

    /// <summary>The number of trained tokens in the batch: what <see cref="CrossEntropyOptions.CountTokens"/> of causal options returns for <see cref="Labels"/>.</summary>
    public long TrainedTokenCount { get; }

    /// <summary>Moves the tensors out of the current <see cref="DisposeScope"/>.</summary>
    public SftBatch MoveToOuterDisposeScope()
    {
        InputIds.MoveToOuterDisposeScope();
        Labels.MoveToOuterDisposeScope();
        AttentionMask.MoveToOuterDisposeScope();
        return this;
    }

    /// <summary>Disposes the tensors.</summary>
    public void Dispose()
    {
        InputIds.Dispose();
        Labels.Dispose();
        AttentionMask.Dispose();
    }
}
