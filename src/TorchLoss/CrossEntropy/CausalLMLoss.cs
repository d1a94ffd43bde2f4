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
    /// <param name="labels">
    /// The token sequence [B, T], unshifted; positions not to learn hold <see cref="CrossEntropyOptions.IgnoreIndex"/>.
    /// Or soft labels [B, T, V] (floating): position t's distribution over the token at t (unshifted as well).
    /// </param>
    /// <param name="lossMask">Optional bool [B, T] aligned with <paramref name="labels"/>: true = this token is learned.</param>
    /// <param name="normalizer">
    /// Optional count of learned tokens across all micro-batches of one optimiser step (sum <see cref="CountTokens"/>
    /// over them); the loss is then Σ loss / normalizer and accumulated gradients equal the full-batch gradient.
    /// </param>
    /// <exception cref="ArgumentException">Shapes, dtypes, devices, label values or class weights are invalid.</exception>
    public LossResult Compute(Tensor logits, Tensor labels, Tensor? lossMask = null, long? normalizer = null)
    {
        CrossEntropyInput.CheckLogits(logits, nameof(logits));
        GradientInPlaceCheck.Check(logits, Options, nameof(logits));
        if (logits.dim() != 3)
            throw new ArgumentException($"logits must be [B, T, V], got shape {CrossEntropyInput.Shape(logits)}.", nameof(logits));
        using var scope = NewDisposeScope();
        long classes = logits.shape[2];
        // The labels are shifted, not the logits: logits[:, :-1] would be a strided copy of the largest tensor.
        var targets = CrossEntropyInput.Prepare(logits, nameof(logits), classes, $"logits shape {CrossEntropyInput.Shape(logits)}", labels, nameof(labels), lossMask, normalizer, Options, causal: true, allowSoft: true);
        var result = CrossEntropyComputation.Compute(logits.reshape(-1, classes), targets, Options, normalizer);
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The number of tokens <paramref name="labels"/> [B, T] contributes to a next-token loss: every position after
    /// the first that is neither <paramref name="ignoreIndex"/> nor masked out. Sum it over the micro-batches of one
    /// optimiser step to get the <c>normalizer</c> of <see cref="Compute"/> (also of <see cref="ChunkedLinearCrossEntropy"/>
    /// in causal mode). Reads a value back from the device.
    /// </summary>
    /// <param name="labels">Unshifted labels [B, T] of an integer dtype.</param>
    /// <param name="lossMask">Optional bool [B, T]: true = learned.</param>
    /// <param name="ignoreIndex">The label value that is not counted: the loss options' <see cref="CrossEntropyOptions.IgnoreIndex"/>.</param>
    /// <exception cref="ArgumentException">The labels or the mask are invalid.</exception>
    public static long CountTokens(Tensor labels, Tensor? lossMask = null, long ignoreIndex = -100)
    {
        CrossEntropyInput.CheckIntegerTarget(labels, nameof(labels));
        if (labels.dim() != 2)
            throw new ArgumentException($"labels must be [B, T], got shape {CrossEntropyInput.Shape(labels)}.", nameof(labels));
        CrossEntropyInput.CheckMask(lossMask, labels.shape, labels, nameof(lossMask), nameof(labels));
        using var scope = NewDisposeScope();
        var (_, counted) = CrossEntropyInput.ShiftedTargets(labels.to(ScalarType.Int64), lossMask, ignoreIndex);
        return counted.sum().item<long>();
    }
}
