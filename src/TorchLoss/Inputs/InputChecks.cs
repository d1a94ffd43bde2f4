using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss;

/// <summary>
/// The argument checks every loss family, tracker and helper shares (logits, integer targets, masks, normaliser,
/// devices), so each says the same thing the same way; every message names the offending shape or value.
/// </summary>
internal static class InputChecks
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

    /// <summary>Next-token scoring needs [B, T, ...] with T ≥ 1 (<paramref name="what"/> describes the last dimension, e.g. "V" or "d").</summary>
    public static void CheckSequenceBatch(Tensor scores, string name, string what)
    {
        if (scores.dim() != 3)
            throw new ArgumentException($"{name} must be a batch of sequences [B, T, {what}] to score next tokens, got shape {Shape(scores)}.", name);
    }

    public static void CheckIntegerTarget(Tensor target, string targetName)
    {
        ArgumentNullException.ThrowIfNull(target, targetName);
        if (target.is_floating_point() || target.is_complex() || target.dtype == ScalarType.Bool)
            throw new ArgumentException($"{targetName} must hold integer class indices, got {target.dtype}.", targetName);
    }

    /// <summary>Checks <paramref name="target"/>'s dtype, shape and device against the class-last <paramref name="logits"/>.</summary>
    public static void CheckTarget(Tensor logits, Tensor target, string logitsName, string targetName, bool allowSoft)
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
        CheckSameDevice(target, targetName, logits, logitsName);
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

    /// <summary>
    /// Checks a loss mask against the per-position shape <paramref name="positions"/> (what <paramref name="positionsFrom"/>
    /// describes in messages) and the device of <paramref name="reference"/>.
    /// </summary>
    public static void CheckMask(Tensor? mask, long[] positions, Tensor reference, string maskName, string positionsFrom)
    {
        if (mask is null) return;
        if (mask.dtype != ScalarType.Bool)
            throw new ArgumentException($"{maskName} must be a bool tensor (true = counted), got {mask.dtype}.", maskName);
        if (!mask.shape.SequenceEqual(positions))
            throw new ArgumentException($"{maskName} shape {Shape(mask)} does not match {positionsFrom} shape {Shape(positions)}.", maskName);
        if (!SameDevice(mask, reference))
            throw new ArgumentException($"{maskName} is on {mask.device} but {positionsFrom} is on {reference.device}.", maskName);
    }

    public static void CheckNormalizer(long? normalizer, torch.nn.Reduction reduction)
    {
        if (normalizer is null) return;
        if (normalizer <= 0)
            throw new ArgumentException($"normalizer must be a positive token count, got {normalizer}.", nameof(normalizer));
        if (reduction == torch.nn.Reduction.None)
            throw new ArgumentException("normalizer applies to a reduced loss; it cannot be combined with Reduction.None.", nameof(normalizer));
    }

    public static void CheckSameShape(Tensor a, string aName, Tensor b, string bName, string why)
    {
        if (!a.shape.SequenceEqual(b.shape))
            throw new ArgumentException($"{bName} shape {Shape(b)} does not match {aName} shape {Shape(a)}; {why}.", bName);
    }

    public static void CheckSameDevice(Tensor a, string aName, Tensor b, string bName)
    {
        if (!SameDevice(a, b))
            throw new ArgumentException($"{aName} is on {a.device} but {bName} is on {b.device}.", aName);
    }

    public static bool SameDevice(Tensor a, Tensor b) => a.device_type == b.device_type && a.device_index == b.device_index;

    public static string Shape(Tensor t) => Shape(t.shape);

    public static string Shape(long[] shape) => "[" + string.Join(", ", shape) + "]";

    /// <summary>The index of flat position <paramref name="flat"/> in a tensor of <paramref name="shape"/>.</summary>
    public static long[] Unravel(long flat, long[] shape)
    {
        var index = new long[shape.Length];
        for (int d = shape.Length - 1; d >= 0; d--)
        {
            index[d] = flat % shape[d];
            flat /= shape[d];
        }
        return index;
    }

    /// <summary>
    /// The head's inputs: floating hidden [..., d], weight [V, d] and bias [V] of its dtype, and with <paramref name="cpuOnly"/>
    /// all on the CPU (<paramref name="module"/> names the caller): the checks of every module that takes hidden states and
    /// the head weight instead of logits (<see cref="ChunkedLinearCrossEntropy"/>, <see cref="ChunkedLinearPreferenceLoss"/>,
    /// <see cref="Metrics.ChunkedHeadMetrics"/>).
    /// </summary>
    internal static void CheckHead(Tensor hidden, Tensor weight, Tensor? bias, string module, bool cpuOnly = true)
    {
        ArgumentNullException.ThrowIfNull(hidden);
        ArgumentNullException.ThrowIfNull(weight);
        if (!hidden.is_floating_point())
            throw new ArgumentException($"hidden must be a floating-point tensor, got {hidden.dtype}.", nameof(hidden));
        if (hidden.dim() < 1)
            throw new ArgumentException("hidden must be [..., d], got a scalar.", nameof(hidden));
        if (weight.dim() != 2 || weight.shape[1] != hidden.shape[^1] || weight.shape[0] < 1)
        {
            throw new ArgumentException(
                $"weight must be [V, d] with d = {hidden.shape[^1]} (the last dimension of hidden {Shape(hidden)}) and V ≥ 1, got {Shape(weight)}.",
                nameof(weight));
        }
        if (weight.dtype != hidden.dtype)
            throw new ArgumentException($"weight is {weight.dtype} but hidden is {hidden.dtype}.", nameof(weight));
        if (bias is not null)
        {
            if (bias.dim() != 1 || bias.shape[0] != weight.shape[0])
                throw new ArgumentException($"bias must be [V] = [{weight.shape[0]}], got {Shape(bias)}.", nameof(bias));
            if (bias.dtype != hidden.dtype)
                throw new ArgumentException($"bias is {bias.dtype} but hidden is {hidden.dtype}.", nameof(bias));
        }
        foreach (var (t, name) in new[] { (hidden, nameof(hidden)), (weight, nameof(weight)), (bias, nameof(bias)) })
        {
            if (cpuOnly && t is not null && t.device_type != DeviceType.CPU)
                throw new ArgumentException($"{module} runs on the CPU only, but {name} is on {t.device}.", name);
        }
    }
}
