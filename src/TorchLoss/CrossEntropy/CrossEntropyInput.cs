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

    /// <summary>Returns <paramref name="target"/> as int64, after checking its dtype, shape and device.</summary>
    public static Tensor CheckTarget(Tensor logits, Tensor target, string logitsName, string targetName)
    {
        CheckIntegerTarget(target, targetName);
        long[] expected = logits.shape[..^1];
        if (!expected.SequenceEqual(target.shape))
        {
            throw new ArgumentException(
                $"{targetName} shape {Shape(target)} does not match {logitsName} shape {Shape(logits)} without its class dimension (expected {Shape(expected)}).",
                targetName);
        }
        if (!SameDevice(target, logits))
            throw new ArgumentException($"{targetName} is on {target.device} but {logitsName} is on {logits.device}.", targetName);
        return target.dtype == ScalarType.Int64 ? target : target.to(ScalarType.Int64);
    }

    public static void CheckIntegerTarget(Tensor target, string targetName)
    {
        ArgumentNullException.ThrowIfNull(target, targetName);
        if (target.is_floating_point() || target.is_complex() || target.dtype == ScalarType.Bool)
            throw new ArgumentException($"{targetName} must hold integer class indices, got {target.dtype}.", targetName);
    }

    public static void CheckMask(Tensor? mask, Tensor target, string maskName, string targetName)
    {
        if (mask is null) return;
        if (mask.dtype != ScalarType.Bool)
            throw new ArgumentException($"{maskName} must be a bool tensor (true = counted), got {mask.dtype}.", maskName);
        if (!mask.shape.SequenceEqual(target.shape))
            throw new ArgumentException($"{maskName} shape {Shape(mask)} does not match {targetName} shape {Shape(target)}.", maskName);
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
