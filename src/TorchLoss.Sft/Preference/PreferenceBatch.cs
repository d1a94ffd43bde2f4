using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss.Sft;

/// <summary>
/// A padded batch of B preference pairs from <see cref="PreferenceCollator"/>, in the concatenated layout of
/// <see cref="PreferenceLoss"/>: rows [0, B) hold the chosen answers and rows [B, 2B) the rejected ones, pair b is rows
/// b and B + b. Hand <see cref="InputIds"/> to the model and <see cref="Labels"/> with <see cref="CompletionMask"/> to the loss.
/// </summary>
public sealed class PreferenceBatch : IDisposable
{
    internal PreferenceBatch(Tensor inputIds, Tensor labels, Tensor completionMask, Tensor attentionMask, Tensor positionIds, long pairCount)
    {
        InputIds = inputIds;
        Labels = labels;
        CompletionMask = completionMask;
        AttentionMask = attentionMask;
        PositionIds = positionIds;
        PairCount = pairCount;
    }

    /// <summary>Token ids [2B, T], int64; padding holds the pad id.</summary>
    public Tensor InputIds { get; }

    /// <summary>Unshifted labels [2B, T], int64: the token id on the answer and its end-of-turn marker, <see cref="SftExample.IgnoreIndex"/> elsewhere.</summary>
    public Tensor Labels { get; }

    /// <summary>[2B, T] bool, aligned with <see cref="Labels"/>: true on the answer and its end-of-turn marker (the tokens each side's log-probability sums).</summary>
    public Tensor CompletionMask { get; }

    /// <summary>[2B, T] bool: true for real tokens, false for padding.</summary>
    public Tensor AttentionMask { get; }

    /// <summary>[2B, T] int64: each real token's position in its own sequence (0 at its first token, whichever side the padding is on); padding holds 0 on the left and the last position on the right, and is never attended.</summary>
    public Tensor PositionIds { get; }

    /// <summary>The number of pairs B.</summary>
    public long PairCount { get; }

    private Tensor[] Tensors => [InputIds, Labels, CompletionMask, AttentionMask, PositionIds];

    /// <summary>Moves the tensors out of the current <see cref="DisposeScope"/>.</summary>
    public PreferenceBatch MoveToOuterDisposeScope()
    {
        foreach (var t in Tensors) t.MoveToOuterDisposeScope();
        return this;
    }

    /// <summary>Disposes the tensors.</summary>
    public void Dispose()
    {
        foreach (var t in Tensors) t.Dispose();
    }
}
