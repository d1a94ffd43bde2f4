using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss.Sft;

/// <summary>
/// Pads <see cref="SftExample"/>s on the right into an <see cref="SftBatch"/>. Padding gets the pad id in the
/// inputs, <see cref="SftExample.IgnoreIndex"/> in the labels and false in the attention mask, so it is
/// neither trained nor attended to.
/// </summary>
public sealed class SftCollator
{
    /// <summary>Creates a collator.</summary>
    /// <param name="padTokenId">The id written into padding positions (any valid id: padding is never trained).</param>
    /// <param name="padToMultipleOf">Rounds the batch length up to a multiple of this (1 = the longest example).</param>
    /// <exception cref="ArgumentOutOfRangeException">The pad id is negative or the multiple is less than 1.</exception>
    public SftCollator(int padTokenId, int padToMultipleOf = 1)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(padTokenId);
        ArgumentOutOfRangeException.ThrowIfLessThan(padToMultipleOf, 1);
        PadTokenId = padTokenId;
        PadToMultipleOf = padToMultipleOf;
    }

    /// <summary>The id written into padding positions.</summary>
    public int PadTokenId { get; }

    /// <summary>The batch length is a multiple of this.</summary>
    public int PadToMultipleOf { get; }

    /// <summary>Pads the examples into one batch.</summary>
    /// <param name="examples">At least one example.</param>
    /// <param name="device">Where the tensors go; the CPU when null.</param>
    /// <exception cref="ArgumentException">The list is empty or holds a null.</exception>
    public SftBatch Collate(IReadOnlyList<SftExample> examples, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(examples);
        if (examples.Count == 0)
            throw new ArgumentException("Cannot collate an empty list of examples.", nameof(examples));
        int nullAt = examples.ToList().FindIndex(e => e is null);
        if (nullAt >= 0)
            throw new ArgumentException($"Example {nullAt} is null.", nameof(examples));

        TorchBackend.EnsureLoaded();
        int longest = examples.Max(e => e.Length);
        int length = (longest + PadToMultipleOf - 1) / PadToMultipleOf * PadToMultipleOf;
        int batch = examples.Count;
        var ids = new long[batch * length];
        var labels = new long[batch * length];
        var mask = new bool[batch * length];
        Array.Fill(ids, PadTokenId);
        Array.Fill(labels, SftExample.IgnoreIndex);
        long trained = 0;
        for (int b = 0; b < batch; b++)
        {
            var example = examples[b];
            int row = b * length;
            for (int t = 0; t < example.Length; t++)
            {
                ids[row + t] = example.InputIds[t];
                labels[row + t] = example.Labels[t];
                mask[row + t] = true;
            }
            trained += example.TrainedTokenCount;
        }
        return new SftBatch(
            ToDevice(tensor(ids, [batch, length], ScalarType.Int64), device),
            ToDevice(tensor(labels, [batch, length], ScalarType.Int64), device),
            ToDevice(tensor(mask, [batch, length], ScalarType.Bool), device),
            trained);
    }

    internal static Tensor ToDevice(Tensor cpu, Device? device)
    {
        if (device is null || device.type == DeviceType.CPU)
            return cpu;
        var moved = cpu.to(device);
        cpu.Dispose();
        return moved;
    }
}
