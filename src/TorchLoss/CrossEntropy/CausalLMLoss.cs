using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss;

/// <summary>
/// The next-token loss of a causal language model on unshifted labels: a <see cref="TokenCrossEntropy"/> whose options
/// have <see cref="CrossEntropyOptions.Causal"/> set. Kept for existing code; new code says causal the one way the
/// whole library does, in the options.
/// </summary>
[Obsolete("Use TokenCrossEntropy with new CrossEntropyOptions { Causal = true }, and CrossEntropyOptions.CountTokens for the token count.")]
public sealed class CausalLMLoss : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly TokenCrossEntropy _loss;

    /// <summary>Creates the module; options are validated here and fixed for its lifetime.</summary>
    /// <param name="options">Smoothing, ignore index, reduction and z-loss; <see cref="CrossEntropyOptions.Default"/> when null. Causal is set whatever they say.</param>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    public CausalLMLoss(CrossEntropyOptions? options = null) : base(nameof(CausalLMLoss))
    {
        _loss = new TokenCrossEntropy((options ?? CrossEntropyOptions.Default) with { Causal = true });
        RegisterComponents();
    }

    /// <summary>The options this module computes with (<see cref="CrossEntropyOptions.Causal"/> is true).</summary>
    public CrossEntropyOptions Options => _loss.Options;

    /// <summary>The loss to backpropagate for <paramref name="logits"/> [B, T, V] and unshifted <paramref name="labels"/> [B, T].</summary>
    public override Tensor forward(Tensor logits, Tensor labels) => _loss.forward(logits, labels);

    /// <summary>Computes the next-token loss and the totals a metric needs; see <see cref="TokenCrossEntropy.Compute"/>.</summary>
    /// <param name="logits">Model output [B, T, V]; position t predicts token t+1.</param>
    /// <param name="labels">The token sequence [B, T], unshifted (or soft labels [B, T, V]).</param>
    /// <param name="lossMask">Optional bool [B, T] aligned with <paramref name="labels"/>: true = this token is learned.</param>
    /// <param name="normalizer">Optional count of learned tokens across all micro-batches of one optimiser step.</param>
    /// <exception cref="ArgumentException">Shapes, dtypes, devices, label values or class weights are invalid.</exception>
    public LossResult Compute(Tensor logits, Tensor labels, Tensor? lossMask = null, long? normalizer = null) =>
        _loss.Compute(logits, labels, lossMask, normalizer);

    /// <summary>The number of tokens unshifted <paramref name="labels"/> [B, T] contribute to a next-token loss.</summary>
    /// <param name="labels">Unshifted labels [B, T] of an integer dtype.</param>
    /// <param name="lossMask">Optional bool [B, T]: true = learned.</param>
    /// <param name="ignoreIndex">The label value that is not counted.</param>
    /// <exception cref="ArgumentException">The labels or the mask are invalid.</exception>
    public static long CountTokens(Tensor labels, Tensor? lossMask = null, long ignoreIndex = LossDefaults.IgnoreIndex) =>
        TargetPreparation.CountTokens(labels, lossMask, causal: true, ignoreIndex);
}
