using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss;

/// <summary>
/// Cross-entropy over logits whose class dimension is last (the language-model layout), with label
/// smoothing in either convention, an ignore index, an optional loss mask and z-loss.
/// </summary>
/// <example>
/// <code>
/// using var loss = new TokenCrossEntropy(new CrossEntropyOptions { LabelSmoothing = 0.1 });
/// using var value = loss.forward(logits, targets); // logits [B, T, V], targets [B, T]
/// </code>
/// </example>
public sealed class TokenCrossEntropy : nn.Module<Tensor, Tensor, Tensor>
{
    /// <summary>Creates the module; options are validated here and fixed for its lifetime.</summary>
    /// <param name="options">Smoothing, ignore index, reduction and z-loss; <see cref="CrossEntropyOptions.Default"/> when null.</param>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    public TokenCrossEntropy(CrossEntropyOptions? options = null) : base(nameof(TokenCrossEntropy))
    {
        Options = options ?? CrossEntropyOptions.Default;
        Options.Validate();
        TorchBackend.EnsureLoaded();
        RegisterComponents();
    }

    /// <summary>The options this module was built with.</summary>
    public CrossEntropyOptions Options { get; }

    /// <summary>The loss to backpropagate for <paramref name="logits"/> [..., C] and int64 <paramref name="target"/> [...].</summary>
    public override Tensor forward(Tensor logits, Tensor target)
    {
        return Compute(logits, target).TakeLoss();
    }

    /// <summary>
    /// Computes the loss and the totals a metric needs.
    /// </summary>
    /// <param name="logits">Unnormalised scores [..., C]; half and bfloat16 are computed in float32.</param>
    /// <param name="target">Class indices [...] of an integer dtype; <see cref="CrossEntropyOptions.IgnoreIndex"/> marks uncounted positions.</param>
    /// <param name="lossMask">Optional bool [...]: true = counted. Combined with the ignore index.</param>
    /// <param name="normalizer">
    /// Optional total of counted tokens across all micro-batches of one optimiser step; when given the loss is
    /// Σ loss / normalizer, so accumulated gradients equal the full-batch gradient.
    /// </param>
    /// <exception cref="ArgumentException">Shapes, dtypes, devices or target values are invalid.</exception>
    public LossResult Compute(Tensor logits, Tensor target, Tensor? lossMask = null, long? normalizer = null)
    {
        CrossEntropyInput.CheckLogits(logits, nameof(logits));
        using var scope = NewDisposeScope();
        var target64 = CrossEntropyInput.CheckTarget(logits, target, nameof(logits), nameof(target));
        CrossEntropyInput.CheckMask(lossMask, target, nameof(lossMask), nameof(target));
        CrossEntropyInput.CheckNormalizer(normalizer, Options.Reduction);
        long classes = logits.shape[^1];
        if (Options.Smoothing == SmoothingKind.OtherClasses && Options.LabelSmoothing > 0 && classes < 2)
            throw new ArgumentException($"OtherClasses smoothing needs at least 2 classes, got logits shape {CrossEntropyInput.Shape(logits)}.", nameof(logits));
        CrossEntropyInput.CheckTargetRange(target64, classes, Options, nameof(target));

        var flatTarget = target64.reshape(-1);
        var counted = flatTarget.ne(Options.IgnoreIndex);
        if (lossMask is not null) counted = counted.logical_and(lossMask.reshape(-1));
        var result = CrossEntropyComputation.Compute(logits.reshape(-1, classes), flatTarget, counted, Options, normalizer, target.shape);
        return result.MoveToOuterDisposeScope();
    }
}
