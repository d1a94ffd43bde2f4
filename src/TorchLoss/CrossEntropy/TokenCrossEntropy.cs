using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss;

/// <summary>
/// Cross-entropy over logits whose class dimension is last (the language-model layout), with label
/// smoothing in either convention, an ignore index, an optional loss mask and z-loss. With
/// <see cref="CrossEntropyOptions.Causal"/> it is a causal language model's next-token loss on unshifted labels.
/// </summary>
/// <example>
/// <code>
/// using var loss = new TokenCrossEntropy(new CrossEntropyOptions { LabelSmoothing = 0.1, Causal = true });
/// using var result = loss.Compute(model.forward(ids), ids);   // ids [B, T], logits [B, T, V]; position t predicts ids[:, t+1]
/// result.Loss.backward();
/// </code>
/// </example>
public sealed class TokenCrossEntropy : nn.Module<Tensor, Tensor, Tensor>
{
    /// <summary>Creates the module; options are validated here and fixed for its lifetime.</summary>
    /// <param name="options">Smoothing, ignore index, reduction, z-loss and causal shift; <see cref="CrossEntropyOptions.Default"/> when null.</param>
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
    /// <param name="logits">
    /// Unnormalised scores [..., C]; half and bfloat16 are computed in float32. With <see cref="CrossEntropyOptions.Causal"/>:
    /// the model's output [B, T, V], position t predicting token t+1.
    /// </param>
    /// <param name="target">
    /// Class indices [...] of an integer dtype, where <see cref="CrossEntropyOptions.IgnoreIndex"/> marks uncounted positions
    /// (with <see cref="CrossEntropyOptions.Causal"/>: the token sequence [B, T] itself, unshifted);
    /// or soft targets: a floating tensor with the logits' shape holding a distribution over the classes per position
    /// (torch's probability targets, unshifted as well when causal; no ignore index, use <paramref name="lossMask"/>).
    /// </param>
    /// <param name="lossMask">Optional bool [...] aligned with <paramref name="target"/>: true = counted (learned). Combined with the ignore index.</param>
    /// <param name="normalizer">
    /// Optional total of counted tokens across all micro-batches of one optimiser step (sum
    /// <see cref="CrossEntropyOptions.CountTokens"/> over them); when given the loss is Σ loss / normalizer, so
    /// accumulated gradients equal the full-batch gradient.
    /// </param>
    /// <exception cref="ArgumentException">Shapes, dtypes, devices, target values or class weights are invalid.</exception>
    public LossResult Compute(Tensor logits, Tensor target, Tensor? lossMask = null, long? normalizer = null)
    {
        InputChecks.CheckLogits(logits, nameof(logits));
        GradientInPlaceCheck.Check(logits, Options, nameof(logits));
        if (Options.Causal) InputChecks.CheckSequenceBatch(logits, nameof(logits), "V");
        InputChecks.CheckNormalizer(normalizer, Options.Reduction);
        using var scope = NewDisposeScope();
        long classes = logits.shape[^1];
        var spec = Options.TargetSpec(nameof(logits), Options.Causal ? "labels" : nameof(target), classes,
            $"logits shape {InputChecks.Shape(logits)}", normalizer, allowSoft: true);
        // With Causal the labels are shifted, not the logits: logits[:, :-1] would be a strided copy of the largest tensor.
        var targets = TargetPreparation.Prepare(logits, target, lossMask, spec);
        var result = CrossEntropyComputation.Compute(logits.reshape(-1, classes), targets, Options, normalizer);
        return result.MoveToOuterDisposeScope();
    }
}
