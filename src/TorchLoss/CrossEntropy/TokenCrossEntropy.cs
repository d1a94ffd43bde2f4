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

    /// <summary>The loss to backpropagate for <paramref name="logits"/> [..., C] and <paramref name="target"/>: class indices [...] or distributions [..., C].</summary>
    public override Tensor forward(Tensor logits, Tensor target)
    {
        return Compute(logits, target).TakeLoss();
    }

    /// <summary>
    /// Computes the loss and the totals a metric needs.
    /// </summary>
    /// <param name="logits">Unnormalised scores [..., C]; half and bfloat16 are computed in float32.</param>
    /// <param name="target">
    /// Class indices [...] of an integer dtype, where <see cref="CrossEntropyOptions.IgnoreIndex"/> marks uncounted positions;
    /// or soft targets: a floating tensor with the logits' shape holding a distribution over the classes per position
    /// (torch's probability targets; no ignore index, use <paramref name="lossMask"/>).
    /// </param>
    /// <param name="lossMask">Optional bool [...]: true = counted. Combined with the ignore index.</param>
    /// <param name="normalizer">
    /// Optional total of counted tokens across all micro-batches of one optimiser step; when given the loss is
    /// Σ loss / normalizer, so accumulated gradients equal the full-batch gradient.
    /// </param>
    /// <exception cref="ArgumentException">Shapes, dtypes, devices, target values or class weights are invalid.</exception>
    public LossResult Compute(Tensor logits, Tensor target, Tensor? lossMask = null, long? normalizer = null)
    {
        CrossEntropyInput.CheckLogits(logits, nameof(logits));
        GradientInPlaceCheck.Check(logits, Options, nameof(logits));
        using var scope = NewDisposeScope();
        long classes = logits.shape[^1];
        var targets = CrossEntropyInput.Prepare(logits, nameof(logits), classes, $"logits shape {CrossEntropyInput.Shape(logits)}", target, nameof(target), lossMask, normalizer, Options, causal: false, allowSoft: true);
        var result = CrossEntropyComputation.Compute(logits.reshape(-1, classes), targets, Options, normalizer);
        return result.MoveToOuterDisposeScope();
    }
}
