using TorchLoss.Kernels;
using TorchSharp;
using static TorchLoss.InputChecks;
using static TorchSharp.torch;

namespace TorchLoss;

/// <summary>
/// The one target-preparation path of every module and tracker that scores positions: checks targets, mask and class
/// weights against the scores, applies the causal shift, and flattens, so every family counts exactly the same tokens.
/// </summary>
internal static class TargetPreparation
{
    /// <summary>
    /// Prepares <paramref name="target"/> (class indices [...] or, when <see cref="TargetSpec.AllowSoft"/>, distributions
    /// with the scores' shape) for <paramref name="scores"/>, whose last dimension is per position (logits [..., C], or
    /// hidden states [..., d] for the fused head).
    /// </summary>
    /// <exception cref="ArgumentException">Any input is invalid; the message names the offending shape or value.</exception>
    public static PreparedTargets Prepare(Tensor scores, Tensor target, Tensor? lossMask, TargetSpec spec)
    {
        ArgumentNullException.ThrowIfNull(target, spec.TargetName);
        long[] positions = scores.shape[..^1];
        bool soft = spec.AllowSoft && target.is_floating_point() && target.shape.SequenceEqual(scores.shape);
        if (soft)
            CheckSameDevice(target, spec.TargetName, scores, spec.ScoresName);
        else
            CheckTarget(scores, target, spec.ScoresName, spec.TargetName, spec.AllowSoft);
        if (spec.Causal && positions[1] < 2)
            throw new ArgumentException($"{spec.TargetName} must hold at least 2 tokens per row to predict a next token, got shape {Shape(positions)}.", spec.TargetName);
        CheckMask(lossMask, positions, target, "lossMask", spec.TargetName);

        if (soft)
            return PrepareSoft(target, lossMask, spec, positions);

        // Checked before shifting so that an error names the target's own index.
        var target64 = target.dtype == ScalarType.Int64 ? target : target.to(ScalarType.Int64);
        CheckTargetRange(target64, spec);
        var flatTarget = (spec.Causal ? Shift(target64, spec.IgnoreIndex) : target64).reshape(-1);
        // Without a mask the ignore index alone decides (the shift already put it on each row's last position): no
        // mask tensor, and the loss can hand the targets to libtorch as they are.
        var masked = lossMask is null ? null : MaskedPositions(positions, lossMask, spec.Causal, target.device);
        var counted = Counted(flatTarget, masked, spec.IgnoreIndex);
        Tensor? weightSum = null;
        if (spec.ClassWeights is not null)
        {
            var w = tensor(spec.ClassWeights, ScalarType.Float64, target.device);
            weightSum = w.index_select(0, flatTarget.masked_fill(counted.logical_not(), 0)).masked_fill(counted.logical_not(), 0).sum();
            CheckCountedWeights(weightSum, counted, spec);
        }
        return new PreparedTargets(flatTarget, counted, spec.ClassWeights, weightSum, positions) { OnlyIgnoreIndex = masked is null };
    }

    /// <summary>
    /// Which of the flattened positions [N] of a [..., X] input with per-position shape <paramref name="positions"/> are
    /// counted by the mask alone (all when it is null). Causal: position t is counted when token t+1 is, and the last
    /// position of each row never (it predicts past the sequence); the mask is aligned with the tokens.
    /// </summary>
    public static Tensor CountedPositions(long[] positions, Tensor? lossMask, bool causal, Device device) =>
        MaskedPositions(positions, lossMask, causal, device) ?? ones(positions.Aggregate(1L, (a, b) => a * b), ScalarType.Bool, device);

    /// <summary><see cref="CountedPositions"/>, or null when every position counts (no mask, not causal): one tensor less per call.</summary>
    public static Tensor? MaskedPositions(long[] positions, Tensor? lossMask, bool causal, Device device)
    {
        if (!causal)
            return lossMask?.reshape(-1);
        long batch = positions[0];
        var next = lossMask is null ? ones([batch, positions[1] - 1], ScalarType.Bool, device) : lossMask[.., 1..];
        return cat([next, zeros([batch, 1], ScalarType.Bool, device)], 1).reshape(-1);
    }

    /// <summary>The number of positions counted for unshifted (if <paramref name="causal"/>) integer labels; reads a value back.</summary>
    public static long CountTokens(Tensor labels, Tensor? lossMask, bool causal, long ignoreIndex)
    {
        CheckIntegerTarget(labels, nameof(labels));
        if (causal && labels.dim() != 2)
            throw new ArgumentException($"With Causal = true labels must be [B, T], got shape {Shape(labels)}.", nameof(labels));
        CheckMask(lossMask, labels.shape, labels, nameof(lossMask), nameof(labels));
        using var scope = NewDisposeScope();
        var labels64 = labels.to(ScalarType.Int64);
        var flat = (causal ? Shift(labels64, ignoreIndex) : labels64).reshape(-1);
        return Counted(flat, MaskedPositions(labels.shape, lossMask, causal, labels.device), ignoreIndex).sum().item<long>();
    }

    /// <summary>Labels [B, T] moved one step left: position t holds label t+1, the last position the ignore index.</summary>
    private static Tensor Shift(Tensor labels, long ignoreIndex) =>
        cat([labels[.., 1..], full(labels.shape[0], 1, ignoreIndex, ScalarType.Int64, labels.device)], 1);

    private static Tensor Counted(Tensor flatTargets, Tensor? counted, long ignoreIndex)
    {
        var kept = flatTargets.ne(ignoreIndex);
        return counted is null ? kept : kept.logical_and(counted);
    }

    private static PreparedTargets PrepareSoft(Tensor target, Tensor? lossMask, TargetSpec spec, long[] positions)
    {
        long classes = spec.Classes;
        // Counted positions in the target's own coordinates: with causal targets the first label is never predicted.
        var counted = lossMask ?? ones(positions, ScalarType.Bool, target.device);
        if (spec.Causal) counted = cat([zeros([positions[0], 1], ScalarType.Bool, target.device), counted[.., 1..]], 1);
        if (spec.CheckSoftTargets) CheckDistributions(target, counted, spec.TargetName);
        // Uncounted rows may hold anything (padding, NaN): zero them so no NaN reaches the gradient through a masked row.
        var rows = target.masked_fill(counted.logical_not().unsqueeze(-1), 0);
        if (spec.Causal)
        {
            rows = cat([rows[.., 1..], zeros([positions[0], 1, classes], rows.dtype, rows.device)], 1);
            counted = cat([counted[.., 1..], zeros([positions[0], 1], ScalarType.Bool, counted.device)], 1);
        }
        return new PreparedTargets(rows.reshape(-1, classes), counted.reshape(-1), spec.ClassWeights, null, positions);
    }

    /// <summary>Every counted row is a distribution: no negative (or NaN) entry, and a sum within a dtype-dependent tolerance of 1.</summary>
    private static void CheckDistributions(Tensor target, Tensor counted, string targetName)
    {
        using var scope = NewDisposeScope();
        double tolerance = target.dtype switch
        {
            ScalarType.Float64 => 1e-6,
            ScalarType.Float32 => 1e-3,
            _ => 1e-2,
        };
        var rows = target.to(ScalarType.Float64);
        var sums = rows.sum(-1);
        var negative = rows.lt(0).any(-1);
        var offSum = (sums - 1).abs().le(tolerance).logical_not(); // NaN sums land here too
        var bad = (negative | offSum) & counted;
        if (!bad.any().item<bool>()) return;
        long position = bad.flatten().nonzero()[0, 0].item<long>();
        long[] index = Unravel(position, counted.shape);
        double minimum = rows.reshape(-1, rows.shape[^1])[position].min().item<double>();
        double sum = sums.flatten()[position].item<double>();
        throw new ArgumentException(
            $"{targetName} at position {Shape(index)} is not a distribution: its entries sum to {sum:G6} (tolerance {tolerance:G1}) and the smallest is {minimum:G6}. " +
            "Soft targets need non-negative entries summing to 1 on every counted position (CheckSoftTargets = false skips this check).",
            targetName);
    }

    /// <summary>
    /// A weighted mean divides by Σ w[target] of the counted tokens; when tokens are counted but all their weights are 0
    /// it would be 0/0. Reading the sum syncs with the device, so on accelerators it runs only when targets are checked.
    /// </summary>
    private static void CheckCountedWeights(Tensor weightSum, Tensor counted, TargetSpec spec)
    {
        if (!spec.DividesByWeightSum) return;
        if (weightSum.device_type != DeviceType.CPU && !spec.CheckOnAccelerator) return;
        if (weightSum.item<double>() > 0 || !counted.any().item<bool>()) return;
        throw new ArgumentException(
            $"Every counted {spec.TargetName} value has class weight 0, so the weighted mean would divide by 0; count a class with a positive weight, or use Reduction.Sum.",
            spec.TargetName);
    }

    /// <summary>
    /// The flat index of the first int64 target outside [0, C) that is not the ignore index, or −1: one scan of the
    /// values in place, which on the CPU costs less than the call overhead of the tensor operations that would do it
    /// (a dominant part of a small batch's loss).
    /// </summary>
    private static unsafe long FirstOutOfRangeOnCpu(Tensor target, TargetSpec spec)
    {
        var values = target.is_contiguous() ? target : target.contiguous();
        long* data = TensorMemory.Pointer<long>(values);
        long count = values.numel();
        ulong classes = (ulong)spec.Classes;
        for (long i = 0; i < count; i++)
        {
            long v = data[i];
            if ((ulong)v >= classes && v != spec.IgnoreIndex) return i;   // a negative v is a huge unsigned value
        }
        return -1;
    }

    /// <summary><see cref="FirstOutOfRangeOnCpu"/> with tensor operations, for accelerators; reads the answer back.</summary>
    private static long FirstOutOfRange(Tensor target, TargetSpec spec)
    {
        var bad = (target.lt(0) | target.ge(spec.Classes)) & target.ne(spec.IgnoreIndex);
        return bad.any().item<bool>() ? bad.flatten().nonzero()[0, 0].item<long>() : -1;
    }

    /// <summary>
    /// Every target is the ignore index or a class in [0, C). Reading the answer syncs with the device, so on
    /// accelerators it runs only when asked for.
    /// </summary>
    private static void CheckTargetRange(Tensor target, TargetSpec spec)
    {
        bool onCpu = target.device_type == DeviceType.CPU;
        if (!onCpu && !spec.CheckOnAccelerator) return;
        using var scope = NewDisposeScope();
        long position = onCpu ? FirstOutOfRangeOnCpu(target, spec) : FirstOutOfRange(target, spec);
        if (position < 0) return;
        long value = target.flatten()[position].item<long>();
        throw new ArgumentException(
            $"{spec.TargetName} holds {value} at index {Shape(Unravel(position, target.shape))}, outside [0, {spec.Classes}) and not the ignore index {spec.IgnoreIndex}.",
            spec.TargetName);
    }
}
