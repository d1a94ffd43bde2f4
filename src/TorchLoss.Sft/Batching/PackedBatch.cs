using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss.Sft;

/// <summary>Packed rows as tensors, from <see cref="SequencePacker.ToBatch"/>.</summary>
public sealed class PackedBatch : IDisposable
{
    internal PackedBatch(Tensor inputIds, Tensor labels, Tensor positionIds, Tensor documentIds, long trainedTokenCount)
    {
        InputIds = inputIds;
        Labels = labels;
        PositionIds = positionIds;
        DocumentIds = documentIds;
        TrainedTokenCount = trainedTokenCount;
    }

    /// <summary>Token ids [B, L], int64.</summary>
    public Tensor InputIds { get; }

    /// <summary>Unshifted labels [B, L], int64, for a <see cref="TokenCrossEntropy"/> with <see cref="CrossEntropyOptions.Causal"/> set.</summary>
    public Tensor Labels { get; }

    /// <summary>Positions within each document [B, L], int64, for the model's position embedding.</summary>
    public Tensor PositionIds { get; }

    /// <summary>Document index of each token [B, L], int64 (<see cref="PackedRow.PaddingDocument"/> for padding); see <see cref="SequencePacker.BlockDiagonalCausalMask"/>.</summary>
    public Tensor DocumentIds { get; }

    /// <summary>The number of trained tokens: what <see cref="CrossEntropyOptions.CountTokens"/> of causal options returns for <see cref="Labels"/>.</summary>
    public long TrainedTokenCount { get; }

    /// <summary>Moves the tensors out of the current <see cref="DisposeScope"/>.</summary>
    public PackedBatch MoveToOuterDisposeScope()
    {
        InputIds.MoveToOuterDisposeScope();
        Labels.MoveToOuterDisposeScope();
        PositionIds.MoveToOuterDisposeScope();
        DocumentIds.MoveToOuterDisposeScope();
        return this;
    }

    /// <summary>Disposes the tensors.</summary>
    public void Dispose()
    {
        InputIds.Dispose();
        Labels.Dispose();
        PositionIds.Dispose();
        DocumentIds.Dispose();
    }
}
