using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss;

/// <summary>
/// The next-token loss of a causal language model. Labels are the token sequence itself, unshifted:
/// the module pairs <c>logits[:, t]</c> with <c>labels[:, t+1]</c>, so callers never shift (shifting
/// twice silently trains on the next-next token).
/// </summary>
/// <example>
/// <code>
/// using var lossFn = new CausalLMLoss(new CrossEntropyOptions { LabelSmoothing = 0.1 });
/// using var result = lossFn.Compute(model.forward(ids), ids);   // ids [B, T], logits [B, T, V]
/// result.Loss.backward();
/// </code>
/// </example>
public sealed class CausalLMLoss : nn.Module<Tensor, Tensor, Tensor>
{
    /// <summary>Creates the module; options are validated here and fixed for its lifetime.</summary>
    /// <param name="options">Smoothing, ignore index, reduction and z-loss; <see cref="CrossEntropyOptions.Default"/> when null.</param>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    public CausalLMLoss(CrossEntropyOptions? options = null) : base(nameof(CausalLMLoss))
    {
        Options = options ?? CrossEntropyOptions.Default;
        Options.Validate();
        TorchBackend.EnsureLoaded();
        RegisterComponents();
    }

    /// <summary>The options this module was built with.</summary>
    public CrossEntropyOptions Options { get; }

    /// <summary>The loss to backpropagate for <paramref name="logits"/> [B, T, V] and unshifted <paramref name="labels"/> [B, T].</summary>
    public override Tensor forward(Tensor logits, Tensor labels) => Compute(logits, labels).TakeLoss();

    /// <summary>Computes the next-token loss and the totals a metric needs.</summary>
    /// <param name="logits">Model output [B, T, V]; position t predicts token t+1.</param>
    /// <param name="labels">The token sequence [B, T], unshifted; positions not to learn hold <see cref="CrossEntropyOptions.IgnoreIndex"/>.</param>
    /// <param name="lossMask">Optional bool [B, T] aligned with <paramref name="labels"/>: true = this token is learned.</param>
    /// <param name="normalizer">
    /// Optional count of learned tokens across all micro-batches of one optimiser step (sum <see cref="CountTokens"/>
    /// over them); the loss is then Σ loss / normalizer and accumulated gradients equal the full-batch gradient.
    /// </param>
    /// <exception cref="ArgumentException">Shapes, dtypes, devices or label values are invalid.</exception>
    public LossResult Compute(Tensor logits, Tensor labels, Tensor? lossMask = null, long? normalizer = null)
    {
        CrossEntropyInput.CheckLogits(logits, nameof(logits));
        ArgumentNullException.ThrowIfNull(labels);
        if (logits.dim() != 3)
            throw new ArgumentException($"logits must be [B, T, V], got shape {CrossEntropyInput.Shape(logits)}.", nameof(logits));
        if (labels.dim() == 2 && labels.shape[1] < 2)
            throw new ArgumentException($"labels must hold at least 2 tokens per row to predict a next token, got shape {CrossEntropyInput.Shape(labels)}.", nameof(labels));
        using var scope = NewDisposeScope();
        var labels64 = CrossEntropyInput.CheckTarget(logits, labels, nameof(logits), nameof(labels));
        CrossEntropyInput.CheckMask(lossMask, labels, nameof(lossMask), nameof(labels));
        CrossEntropyInput.CheckNormalizer(normalizer, Options.Reduction);
        long classes = logits.shape[2];
        if (Options.Smoothing == SmoothingKind.OtherClasses && Options.LabelSmoothing > 0 && classes < 2)
            throw new ArgumentException($"OtherClasses smoothing needs at least 2 classes, got logits shape {CrossEntropyInput.Shape(logits)}.", nameof(logits));

        // Checked before shifting so that an error names the label's own index.
        CrossEntropyInput.CheckTargetRange(labels64, classes, Options, nameof(labels));

        // Shift the labels, not the logits: logits[:, :-1] would be a strided copy of the largest tensor.
        var (shifted, counted) = ShiftedTargets(labels64, lossMask);
        var result = CrossEntropyComputation.Compute(logits.reshape(-1, classes), shifted.reshape(-1), counted.reshape(-1), Options, normalizer, labels.shape);
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The number of tokens <paramref name="labels"/> [B, T] will contribute to the loss (every position
    /// after the first that is neither ignored nor masked). Sum it over the micro-batches of one optimiser
    /// step to get the <c>normalizer</c>. Reads a value back from the device.
    /// </summary>
    public long CountTokens(Tensor labels, Tensor? lossMask = null)
    {
        CrossEntropyInput.CheckIntegerTarget(labels, nameof(labels));
        if (labels.dim() != 2)
            throw new ArgumentException($"labels must be [B, T], got shape {CrossEntropyInput.Shape(labels)}.", nameof(labels));
        CrossEntropyInput.CheckMask(lossMask, labels, nameof(lossMask), nameof(labels));
        using var scope = NewDisposeScope();
        var (_, counted) = ShiftedTargets(labels.to(ScalarType.Int64), lossMask);
        return counted.sum().item<long>();
    }

    /// <summary>Targets [B, T] where position t holds label t+1, and the last position is ignored.</summary>
    private (Tensor Targets, Tensor Counted) ShiftedTargets(Tensor labels, Tensor? lossMask)
    {
        long batch = labels.shape[0];
        var pad = full(batch, 1, Options.IgnoreIndex, ScalarType.Int64, labels.device);
        var targets = cat([labels[.., 1..], pad], 1);
        var counted = targets.ne(Options.IgnoreIndex);
        if (lossMask is not null)
        {
            var maskPad = zeros(batch, 1, ScalarType.Bool, lossMask.device);
            counted = counted.logical_and(cat([lossMask[.., 1..], maskPad], 1));
        }
        return (targets, counted);
    }
}
