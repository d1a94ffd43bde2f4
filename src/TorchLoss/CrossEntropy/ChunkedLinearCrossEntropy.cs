using TorchLoss.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss;

/// <summary>
/// The output head and its cross-entropy in one step, <c>loss(hidden·weightᵀ + bias, target)</c>, without ever
/// materialising the [N, V] logits: rows go through in chunks whose logits are turned into gradients in place
/// and folded into the gradients of <c>hidden</c>, <c>weight</c> and <c>bias</c>. Memory grows with one small chunk
/// (<see cref="AutomaticChunkBytes"/>) instead of three or four copies of the logits; label smoothing's constant
/// gradient is added in closed form and columns of negligible softmax are skipped (<see cref="DefaultGradientFilter"/>);
/// the loss, gradients and totals are those of <see cref="TokenCrossEntropy"/> on the full logits (same options,
/// masks and normaliser; with <see cref="CrossEntropyOptions.Causal"/> the next-token loss on unshifted labels).
/// </summary>
/// <remarks>
/// Runs on the CPU with float32 or float64 (float16/bfloat16 inputs are computed in float32). With
/// <see cref="torch.nn.Reduction.None"/> the chunks are swept twice (losses in forward, gradients in backward,
/// since they need each token's incoming gradient); the reduced losses need one sweep.
/// </remarks>
/// <example>
/// <code>
/// using var head = new ChunkedLinearCrossEntropy(new CrossEntropyOptions { LabelSmoothing = 0.1, Causal = true });
/// var loss = head.forward(hidden, lmHead.weight!, ids);   // hidden [B, T, d], weight [V, d], unshifted ids [B, T]
/// loss.backward();
/// </code>
/// </example>
public sealed class ChunkedLinearCrossEntropy : nn.Module<Tensor, Tensor, Tensor, Tensor>
{
    /// <summary>
    /// The memory one chunk of logits may take when the chunk size is automatic: 16 MiB (83 rows of GPT-2's 50,257
    /// classes in float32), so that the loss needs little beyond its gradients (grad_weight alone is V·d values).
    /// </summary>
    public const long AutomaticChunkBytes = 16L << 20;

    /// <summary>
    /// The default gradient filter τ = 1e-6: in each chunk, a vocabulary column whose softmax is below τ/V in every row
    /// is left out of the two backward matmuls, which changes each row's logit gradient by less than τ (L1 norm, out
    /// of a row gradient whose softmax part alone sums to 1). On a random initialisation nothing is that small and
    /// nothing is skipped; on a trained model most of the vocabulary is.
    /// </summary>
    public const double DefaultGradientFilter = 1e-6;

    /// <summary>Creates the module; options are validated here and fixed for its lifetime.</summary>
    /// <param name="options">
    /// Smoothing, ignore index, class weights, reduction, z-loss and causal shift; <see cref="CrossEntropyOptions.Default"/>
    /// when null. <see cref="CrossEntropyOptions.Backend"/> does not apply. With <see cref="CrossEntropyOptions.Causal"/>
    /// hidden is [B, T, d] and the labels [B, T] unshifted: position t is scored against label t+1.
    /// </param>
    /// <param name="chunkSize">Rows per chunk; null picks the largest chunk whose logits fit in <see cref="AutomaticChunkBytes"/>.</param>
    /// <param name="causal">
    /// Superseded by <see cref="CrossEntropyOptions.Causal"/>, the one way the library says causal; kept so that existing
    /// calls work: true sets it.
    /// </param>
    /// <param name="gradientFilter">
    /// The gradient filter τ in [0, 1) (<see cref="DefaultGradientFilter"/> by default): softmax values below τ/V in
    /// every row of a chunk skip their vocabulary column in the backward matmuls. 0 is the exact mode: nothing is
    /// skipped and the gradients equal the plain head's to float rounding. The loss and its totals never change.
    /// </param>
    /// <exception cref="ArgumentException">An option is out of range, <paramref name="chunkSize"/> is not positive or <paramref name="gradientFilter"/> is outside [0, 1).</exception>
    public ChunkedLinearCrossEntropy(CrossEntropyOptions? options = null, int? chunkSize = null, bool causal = false, double gradientFilter = DefaultGradientFilter)
        : base(nameof(ChunkedLinearCrossEntropy))
    {
        Options = options ?? CrossEntropyOptions.Default;
        if (causal && !Options.Causal) Options = Options with { Causal = true };
        Options.Validate();
        if (chunkSize is <= 0)
            throw new ArgumentException($"chunkSize must be a positive number of rows, got {chunkSize}.", nameof(chunkSize));
        if (!(gradientFilter >= 0 && gradientFilter < 1))
            throw new ArgumentException($"gradientFilter must be in [0, 1) (0 = exact), got {gradientFilter}.", nameof(gradientFilter));
        ChunkSize = chunkSize;
        GradientFilter = gradientFilter;
        TorchBackend.EnsureLoaded();
        RegisterComponents();
    }

    /// <summary>The options this module was built with.</summary>
    public CrossEntropyOptions Options { get; }

    /// <summary>Rows per chunk, or null for automatic.</summary>
    public int? ChunkSize { get; }

    /// <summary>The gradient filter τ (0 = exact); see the constructor.</summary>
    public double GradientFilter { get; }

    /// <summary>Whether the module pairs position t with label t+1: <see cref="CrossEntropyOptions.Causal"/> of <see cref="Options"/>.</summary>
    public bool Causal => Options.Causal;

    /// <summary>The loss to backpropagate for <paramref name="hidden"/> [..., d], head <paramref name="weight"/> [V, d] and <paramref name="target"/> [...].</summary>
    public override Tensor forward(Tensor hidden, Tensor weight, Tensor target) => Compute(hidden, weight, target).TakeLoss();

    /// <summary>Computes the loss and the totals a metric needs.</summary>
    /// <param name="hidden">Final hidden states [..., d] (usually [N, d]); [B, T, d] with <see cref="CrossEntropyOptions.Causal"/>.</param>
    /// <param name="weight">The output head's weight [V, d] (an <c>nn.Linear(d, V)</c>'s weight, or tied embeddings).</param>
    /// <param name="target">
    /// Class indices [...] of an integer dtype (in causal mode the unshifted labels [B, T]);
    /// <see cref="CrossEntropyOptions.IgnoreIndex"/> marks uncounted positions.
    /// </param>
    /// <param name="lossMask">Optional bool [...] aligned with <paramref name="target"/>: true = counted. Combined with the ignore index.</param>
    /// <param name="normalizer">
    /// Optional total of counted tokens across the micro-batches of one optimiser step (the sum of
    /// <see cref="CrossEntropyOptions.CountTokens"/>); the loss is then Σ loss / normalizer.
    /// </param>
    /// <param name="bias">Optional head bias [V].</param>
    /// <exception cref="ArgumentException">Shapes, dtypes, devices, target values or class weights are invalid.</exception>
    public LossResult Compute(Tensor hidden, Tensor weight, Tensor target, Tensor? lossMask = null, long? normalizer = null, Tensor? bias = null)
    {
        InputChecks.CheckHead(hidden, weight, bias, nameof(ChunkedLinearCrossEntropy));
        if (Causal) InputChecks.CheckSequenceBatch(hidden, nameof(hidden), "d");
        InputChecks.CheckNormalizer(normalizer, Options.Reduction);
        using var scope = NewDisposeScope();
        long classes = weight.shape[0];
        long width = weight.shape[1];
        var spec = Options.TargetSpec(nameof(hidden), nameof(target), classes, $"weight shape {InputChecks.Shape(weight)}", normalizer, allowSoft: false);
        var targets = TargetPreparation.Prepare(hidden, target, lossMask, spec);
        var flatTarget = targets.Target.contiguous();
        var counted = targets.Counted.contiguous();
        long tokenCount = counted.sum(ScalarType.Int64).item<long>();

        // Half and bfloat16 lose too much in log-sum-exp: compute in float32; autograd casts the gradients back.
        var computeType = hidden.dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;
        // In causal mode the last position of each row is uncounted: the kernel skips it, so hidden needs no slicing copy.
        var h = hidden.reshape(-1, width).to(computeType).contiguous();
        // Through a view node, not as the leaves themselves: autograd then takes over the gradients the sweep built
        // instead of copying them. A gradient handed straight to a leaf's accumulator is still referenced from .NET,
        // so libtorch clones it (another V·d values at the peak); the view's backward hands on an alias nobody else holds.
        var w = weight.to(computeType).reshape(weight.shape);
        var b = bias?.to(computeType).reshape(bias.shape);
        long elementBytes = computeType == ScalarType.Float64 ? 8 : 4;
        long chunkRows = ChunkSize ?? Math.Max(1, AutomaticChunkBytes / (classes * elementBytes));

        var call = FusedCrossEntropyPath.NewCall(Options, classes, targets, normalizer, tokenCount,
            needGradient: h.requires_grad || w.requires_grad || (b is not null && b.requires_grad));
        var loss = ChunkedLinearCrossEntropyFunction.Apply(h, w, b, flatTarget, counted, call, chunkRows, GradientFilter);
        return FusedCrossEntropyPath.Result(loss, call, tokenCount, targets.PerTokenShape).MoveToOuterDisposeScope();
    }
}
