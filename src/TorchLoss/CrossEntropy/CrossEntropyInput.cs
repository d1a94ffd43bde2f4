using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss;

/// <summary>Argument checks shared by the loss modules; every message names the offending shape or value.</summary>
internal static class CrossEntropyInput
{
    public static void CheckLogits(Tensor logits, string name)
    {
        ArgumentNullException.ThrowIfNull(logits, name);
        if (!logits.is_floating_point())
            throw new ArgumentException($"{name} must be a floating-point tensor, got {logits.dtype}.", name);
        if (logits.dim() < 1)
            throw new ArgumentException($"{name} must have a class dimension (last), got a scalar.", name);
        if (logits.shape[^1] < 1)
            throw new ArgumentException($"{name} must have at least one class, got shape {Shape(logits)}.", name);
    }

    /// <summary>
    /// The one validation and preparation path of the cross-entropy modules. <paramref name="scores"/> is the input
    /// whose last dimension is per position (logits [..., C], or hidden states [..., d] for the fused head) and
    /// <paramref name="classes"/> its class count C. Checks the target (class indices [...] or, when
    /// <paramref name="allowSoft"/>, distributions with the logits' shape), mask, normaliser and class weights, then
    /// flattens; <paramref name="causal"/> pairs position t with target t+1 (the last position is not counted).
    /// <paramref name="classesFrom"/> names where C comes from in messages (e.g. "logits shape [2, 3, 5]").
    /// </summary>
    /// <exception cref="ArgumentException">Any of these is invalid; the message names the offending shape or value.</exception>
    public static PreparedTargets Prepare(
        Tensor scores, string scoresName, long classes, string classesFrom, Tensor target, string targetName, Tensor? lossMask, long? normalizer,
        CrossEntropyOptions options, bool causal, bool allowSoft)
    {
        ArgumentNullException.ThrowIfNull(target, targetName);
        long[] positions = scores.shape[..^1];
        bool soft = allowSoft && target.is_floating_point() && target.shape.SequenceEqual(scores.shape);
        if (soft)
        {
            if (!SameDevice(target, scores))
                throw new ArgumentException($"{targetName} is on {target.device} but {scoresName} is on {scores.device}.", targetName);
        }
        else
        {
            CheckTarget(scores, target, scoresName, targetName, allowSoft);
        }
        if (causal && positions[1] < 2)
            throw new ArgumentException($"{targetName} must hold at least 2 tokens per row to predict a next token, got shape {Shape(positions)}.", targetName);
        CheckMask(lossMask, positions, target, "lossMask", targetName);
        CheckNormalizer(normalizer, options.Reduction);
        if (options.Smoothing == SmoothingKind.OtherClasses && options.LabelSmoothing > 0 && classes < 2)
            throw new ArgumentException($"OtherClasses smoothing needs at least 2 classes, got {classesFrom}.", scoresName);
        var weights = options.ClassWeightsFor(classes, classesFrom);

        if (soft)
            return PrepareSoft(target, targetName, classes, lossMask, weights, options, causal, positions);

        // Checked before shifting so that an error names the target's own index.
        var target64 = target.dtype == ScalarType.Int64 ? target : target.to(ScalarType.Int64);
        CheckTargetRange(target64, classes, options, targetName);
        var (flatTarget, counted) = causal
            ? ShiftedTargets(target64, lossMask, options.IgnoreIndex)
            : (target64.reshape(-1), Counted(target64.reshape(-1), lossMask?.reshape(-1), options.IgnoreIndex));
        flatTarget = flatTarget.reshape(-1);
        counted = counted.reshape(-1);
        Tensor? weightSum = null;
        if (weights is not null)
        {
            var w = tensor(weights, ScalarType.Float64, target.device);
            weightSum = w.index_select(0, flatTarget.masked_fill(counted.logical_not(), 0)).masked_fill(counted.logical_not(), 0).sum();
            CheckCountedWeights(weightSum, counted, options, normalizer, targetName);
        }
        return new PreparedTargets(flatTarget, counted, weights, weightSum, positions);
    }

    private static PreparedTargets PrepareSoft(
        Tensor target, string targetName, long classes, Tensor? lossMask, double[]? weights, CrossEntropyOptions options, bool causal, long[] positions)
    {
        // Counted positions in the target's own coordinates: with causal targets the first label is never predicted.
        var counted = lossMask ?? ones(positions, ScalarType.Bool, target.device);
        if (causal) counted = cat([zeros([positions[0], 1], ScalarType.Bool, target.device), counted[.., 1..]], 1);
        if (options.CheckSoftTargets) CheckDistributions(target, counted, targetName);
        // Uncounted rows may hold anything (padding, NaN): zero them so no NaN reaches the gradient through a masked row.
        var rows = target.masked_fill(counted.logical_not().unsqueeze(-1), 0);
        if (causal)
        {
            rows = cat([rows[.., 1..], zeros([positions[0], 1, classes], rows.dtype, rows.device)], 1);
            counted = cat([counted[.., 1..], zeros([positions[0], 1], ScalarType.Bool, counted.device)], 1);
        }
        return new PreparedTargets(rows.reshape(-1, classes), counted.reshape(-1), weights, null, positions);
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
    private static void CheckCountedWeights(Tensor weightSum, Tensor counted, CrossEntropyOptions options, long? normalizer, string targetName)
    {
        if (options.Reduction != torch.nn.Reduction.Mean || normalizer is not null) return;
        if (weightSum.device_type != DeviceType.CPU && !options.CheckTargetsOnAccelerator) return;
        if (weightSum.item<double>() > 0 || !counted.any().item<bool>()) return;
        throw new ArgumentException(
            $"Every counted {targetName} value has class weight 0, so the weighted mean would divide by 0; count a class with a positive weight, or use Reduction.Sum.",
            targetName);
    }

    /// <summary>Targets [B, T] where position t holds label t+1 and the last position is ignored, and which of them are counted.</summary>
    public static (Tensor Targets, Tensor Counted) ShiftedTargets(Tensor labels, Tensor? lossMask, long ignoreIndex)
    {
        long batch = labels.shape[0];
        var pad = full(batch, 1, ignoreIndex, ScalarType.Int64, labels.device);
        var targets = cat([labels[.., 1..], pad], 1);
        Tensor? shiftedMask = lossMask is null ? null : cat([lossMask[.., 1..], zeros(batch, 1, ScalarType.Bool, lossMask.device)], 1);
        return (targets, Counted(targets, shiftedMask, ignoreIndex));
    }

    private static Tensor Counted(Tensor targets, Tensor? lossMask, long ignoreIndex)
    {
        var counted = targets.ne(ignoreIndex);
        return lossMask is null ? counted : counted.logical_and(lossMask);
    }

    /// <summary>Checks <paramref name="target"/>'s dtype, shape and device against the class-last <paramref name="logits"/>.</summary>
    private static void CheckTarget(Tensor logits, Tensor target, string logitsName, string targetName, bool allowSoft)
    {
        if (allowSoft && target.is_floating_point())
        {
            throw new ArgumentException(
                $"{targetName} is {target.dtype}: a floating-point target holds class probabilities and must have the {logitsName}' shape {Shape(logits)}, got {Shape(target)}; class indices must be an integer tensor.",
                targetName);
        }
        CheckIntegerTarget(target, targetName);
        long[] expected = logits.shape[..^1];
        if (!expected.SequenceEqual(target.shape))
        {
            throw new ArgumentException(
                $"{targetName} shape {Shape(target)} does not match {logitsName} shape {Shape(logits)} without its class dimension (expected {Shape(expected)})." +
                ClassesInDimOneHint(logits, target, logitsName),
                targetName);
        }
        if (!SameDevice(target, logits))
            throw new ArgumentException($"{targetName} is on {target.device} but {logitsName} is on {logits.device}.", targetName);
    }

    /// <summary>Logits [B, C, T, ...] against target [B, T, ...] is torch's layout; say how to fix it instead of only that shapes differ.</summary>
    private static string ClassesInDimOneHint(Tensor logits, Tensor target, string logitsName)
    {
        long[] l = logits.shape, t = target.shape;
        bool torchLayout = l.Length >= 3 && t.Length == l.Length - 1 && l[0] == t[0] && l[2..].SequenceEqual(t[1..]);
        return torchLayout
            ? $" It looks like torch's layout with classes in dim 1: in TorchLoss classes are the last dimension; transpose your logits ({logitsName}.movedim(1, -1), giving {Shape([.. t, l[1]])})."
            : "";
    }

    public static void CheckIntegerTarget(Tensor target, string targetName)
    {
        ArgumentNullException.ThrowIfNull(target, targetName);
        if (target.is_floating_point() || target.is_complex() || target.dtype == ScalarType.Bool)
            throw new ArgumentException($"{targetName} must hold integer class indices, got {target.dtype}.", targetName);
    }

    /// <summary>Checks a loss mask against the per-position shape <paramref name="positions"/> and the device of <paramref name="target"/>.</summary>
    public static void CheckMask(Tensor? mask, long[] positions, Tensor target, string maskName, string targetName)
    {
        if (mask is null) return;
        if (mask.dtype != ScalarType.Bool)
            throw new ArgumentException($"{maskName} must be a bool tensor (true = counted), got {mask.dtype}.", maskName);
        if (!mask.shape.SequenceEqual(positions))
            throw new ArgumentException($"{maskName} shape {Shape(mask)} does not match {targetName} shape {Shape(positions)}.", maskName);
        if (!SameDevice(mask, target))
            throw new ArgumentException($"{maskName} is on {mask.device} but {targetName} is on {target.device}.", maskName);
    }

    /// <summary>
    /// Every target is IgnoreIndex or a class in [0, C). Reading the answer syncs with the device, so on
    /// accelerators it runs only when asked for.
    /// </summary>
    public static void CheckTargetRange(Tensor target, long classes, CrossEntropyOptions options, string targetName)
    {
        if (target.device_type != DeviceType.CPU && !options.CheckTargetsOnAccelerator) return;
        using var scope = NewDisposeScope();
        var bad = (target.lt(0) | target.ge(classes)) & target.ne(options.IgnoreIndex);
        if (!bad.any().item<bool>()) return;
        long position = bad.flatten().nonzero()[0, 0].item<long>();
        long value = target.flatten()[position].item<long>();
        throw new ArgumentException(
            $"{targetName} holds {value} at index {Shape(Unravel(position, target.shape))}, outside [0, {classes}) and not the ignore index {options.IgnoreIndex}.",
            targetName);
    }

    private static long[] Unravel(long flat, long[] shape)
    {
        var index = new long[shape.Length];
        for (int d = shape.Length - 1; d >= 0; d--)
        {
            index[d] = flat % shape[d];
            flat /= shape[d];
        }
        return index;
    }

    public static void CheckNormalizer(long? normalizer, torch.nn.Reduction reduction)
    {
        if (normalizer is null) return;
        if (normalizer <= 0)
            throw new ArgumentException($"normalizer must be a positive token count, got {normalizer}.", nameof(normalizer));
        if (reduction == torch.nn.Reduction.None)
            throw new ArgumentException("normalizer applies to a reduced loss; it cannot be combined with Reduction.None.", nameof(normalizer));
    }

    public static bool SameDevice(Tensor a, Tensor b) => a.device_type == b.device_type && a.device_index == b.device_index;

    public static string Shape(Tensor t) => Shape(t.shape);

    public static string Shape(long[] shape) => "[" + string.Join(", ", shape) + "]";
}
