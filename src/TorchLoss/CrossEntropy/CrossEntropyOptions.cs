using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss;

/// <summary>Options of the cross-entropy modules, fixed when a module is constructed.</summary>
public sealed record CrossEntropyOptions
{
    /// <summary>Label smoothing ε in [0, 1); 0 turns smoothing off.</summary>
    public double LabelSmoothing { get; init; }

    /// <summary>How the smoothing mass is spread; see <see cref="SmoothingKind"/>.</summary>
    public SmoothingKind Smoothing { get; init; } = SmoothingKind.Uniform;

    /// <summary>Target value that is not counted (<see cref="LossDefaults.IgnoreIndex"/>, PyTorch's default -100).</summary>
    public long IgnoreIndex { get; init; } = LossDefaults.IgnoreIndex;

    /// <summary>
    /// Next-token scoring: the inputs are [B, T, ...] and the labels [B, T] are the token sequence itself, <b>unshifted</b>;
    /// position t is scored against label t+1, so callers never shift (shifting twice silently trains on the next-next
    /// token), and the last position is not counted. A loss mask is aligned with the labels: true = this token is learned.
    /// False (default): every position is scored against its own target.
    /// </summary>
    public bool Causal { get; init; }

    /// <summary>How per-token losses are combined: mean over counted tokens, sum, or none (per token).</summary>
    public torch.nn.Reduction Reduction { get; init; } = torch.nn.Reduction.Mean;

    /// <summary>Weight of PaLM's z-loss, weight·logsumexp(logits)² per counted token; must be ≥ 0.</summary>
    public double ZLossWeight { get; init; }

    /// <summary>
    /// Check that targets lie in [0, C) also for tensors on an accelerator. On the CPU targets are always
    /// checked; on CUDA the check reads a value back to the host and so waits for the device, which is why
    /// it is off by default there (an out-of-range target then fails inside libtorch instead).
    /// </summary>
    public bool CheckTargetsOnAccelerator { get; init; }

    /// <summary>
    /// Which implementation computes the loss: <see cref="CrossEntropyBackend.Auto"/> (default) picks the fused CPU
    /// kernel where it is faster and libtorch elsewhere; the other values force one path.
    /// </summary>
    public CrossEntropyBackend Backend { get; init; } = CrossEntropyBackend.Auto;

    /// <summary>
    /// Optional weight of each class (C finite values ≥ 0), with the semantics of torch's <c>cross_entropy(weight: w)</c>:
    /// a token's loss is Σ_j w_j·q_j·(−log p_j) for its target distribution q (one-hot, smoothed or soft), and with
    /// class-index targets <see cref="torch.nn.Reduction.Mean"/> divides by Σ w[target] over counted tokens instead of
    /// their number. <see cref="LossResult.NllSum"/> stays the unweighted NLL. Null (default) weighs every class 1.
    /// </summary>
    public IReadOnlyList<double>? ClassWeights
    {
        get => classWeights;
        init => classWeights = value?.ToArray(); // a copy, so the options stay immutable
    }

    private readonly double[]? classWeights;

    /// <summary>
    /// Check that soft (probability) targets are distributions on every counted position: no negative entry and a
    /// sum within a dtype-dependent tolerance of 1. The check reads a value back from the device; turn it off on hot
    /// paths whose targets are distributions by construction (e.g. a softmax).
    /// </summary>
    public bool CheckSoftTargets { get; init; } = true;

    /// <summary>
    /// Write the gradient into the logits' own storage instead of a new [N, V] tensor (opt-in; default false). Saves
    /// the allocation and first touch of a gradient as large as the logits, the fused kernel's main cost.
    /// </summary>
    /// <remarks>
    /// <para>Safe when the logits are the fresh output of the head (e.g. <c>hidden.matmul(weight.t())</c> or an
    /// <c>nn.Linear</c> on 2-D input) and nothing reads them after the loss: after the call they hold the gradient,
    /// not the logits. Compute everything else you need from them (argmax, accuracy, a second loss) before.</para>
    /// <para>Without a gradient to write (under <c>no_grad</c>, or logits that do not require one) nothing is
    /// overwritten and nothing is refused. Otherwise refused with an <see cref="ArgumentException"/> when the logits are a leaf (a parameter or an input you
    /// hold) or a view of another tensor (a slice or a reshape of the head's output: reshape its input instead).
    /// Refused in backward by autograd's own version check when another
    /// node saved the logits for its backward (e.g. they are the output of <c>exp</c> or <c>tanh</c>), and with an
    /// <see cref="InvalidOperationException"/> for a second backward through a retained graph or a backward with
    /// <c>create_graph</c>, both of which would need the overwritten logits (TorchSharp 0.107 cannot carry an exception
    /// out of a backward, so these two end the process with the message printed).</para>
    /// <para>It applies where the fused CPU kernel runs. On the libtorch path (accelerators, non-contiguous logits
    /// under <see cref="CrossEntropyBackend.Auto"/>, soft targets) the checks above still run, but the gradient is a new
    /// tensor as usual. Half and bfloat16 logits are computed in a float32 copy, which then receives the gradient.</para>
    /// </remarks>
    public bool GradientInPlace { get; init; }

    /// <summary>The default options: no smoothing, ignore index -100, mean reduction, no z-loss, not causal.</summary>
    public static CrossEntropyOptions Default { get; } = new();

    /// <summary>
    /// The number of tokens <paramref name="labels"/> contributes to a loss with these options: every position that is
    /// neither <see cref="IgnoreIndex"/> nor masked out and, with <see cref="Causal"/>, not the first of its row (it is
    /// never predicted). Sum it over the micro-batches of one optimiser step to get the <c>normalizer</c> of
    /// <see cref="TokenCrossEntropy.Compute"/> or <see cref="ChunkedLinearCrossEntropy.Compute"/>. Reads a value back from the device.
    /// </summary>
    /// <param name="labels">Labels of an integer dtype: [B, T] unshifted with <see cref="Causal"/>, any shape otherwise.</param>
    /// <param name="lossMask">Optional bool with the labels' shape: true = learned.</param>
    /// <exception cref="ArgumentException">The labels or the mask are invalid.</exception>
    public long CountTokens(Tensor labels, Tensor? lossMask = null) =>
        TargetPreparation.CountTokens(labels, lossMask, Causal, IgnoreIndex);

    /// <summary>How <see cref="TargetPreparation"/> prepares targets for these options over <paramref name="classes"/> classes.</summary>
    internal TargetSpec TargetSpec(string scoresName, string targetName, long classes, string classesFrom, long? normalizer, bool allowSoft)
    {
        if (Smoothing == SmoothingKind.OtherClasses && LabelSmoothing > 0 && classes < 2)
            throw new ArgumentException($"OtherClasses smoothing needs at least 2 classes, got {classesFrom}.", scoresName);
        return new TargetSpec
        {
            ScoresName = scoresName,
            TargetName = targetName,
            Classes = classes,
            ClassesFrom = classesFrom,
            IgnoreIndex = IgnoreIndex,
            Causal = Causal,
            AllowSoft = allowSoft,
            CheckSoftTargets = CheckSoftTargets,
            CheckOnAccelerator = CheckTargetsOnAccelerator,
            ClassWeights = ClassWeightsFor(classes, classesFrom),
            DividesByWeightSum = Reduction == torch.nn.Reduction.Mean && normalizer is null,
        };
    }

    internal void Validate()
    {
        if (double.IsNaN(LabelSmoothing) || LabelSmoothing < 0 || LabelSmoothing >= 1)
            throw new ArgumentException($"LabelSmoothing must be in [0, 1), got {LabelSmoothing}.", nameof(LabelSmoothing));
        if (double.IsNaN(ZLossWeight) || ZLossWeight < 0 || double.IsInfinity(ZLossWeight))
            throw new ArgumentException($"ZLossWeight must be a finite value ≥ 0, got {ZLossWeight}.", nameof(ZLossWeight));
        if (!Enum.IsDefined(Smoothing))
            throw new ArgumentException($"Unknown smoothing kind {Smoothing}.", nameof(Smoothing));
        if (!Enum.IsDefined(Reduction))
            throw new ArgumentException($"Unknown reduction {Reduction}.", nameof(Reduction));
        if (!Enum.IsDefined(Backend))
            throw new ArgumentException($"Unknown cross-entropy backend {Backend}.", nameof(Backend));
        if (classWeights is not null) ValidateClassWeights(classWeights);
    }

    private void ValidateClassWeights(double[] weights)
    {
        if (weights.Length == 0)
            throw new ArgumentException("ClassWeights must hold one weight per class, got an empty list.", nameof(ClassWeights));
        for (int c = 0; c < weights.Length; c++)
        {
            if (!double.IsFinite(weights[c]) || weights[c] < 0)
                throw new ArgumentException($"ClassWeights must be finite and ≥ 0, got {weights[c]} for class {c}.", nameof(ClassWeights));
        }
        // A class equal to the ignore index is never a counted target, so its weight cannot rescue an all-zero list.
        if (!weights.Where((w, c) => w > 0 && c != IgnoreIndex).Any())
        {
            throw new ArgumentException(
                $"ClassWeights are zero for every class that can be counted (ignore index {IgnoreIndex}): every loss would be 0 and a mean 0/0.",
                nameof(ClassWeights));
        }
    }

    /// <summary>The class weights, checked against the number of <paramref name="classes"/> of an input.</summary>
    internal double[]? ClassWeightsFor(long classes, string classesFrom)
    {
        if (classWeights is not null && classWeights.Length != classes)
        {
            throw new ArgumentException(
                $"ClassWeights holds {classWeights.Length} weights but there are {classes} classes ({classesFrom}).", nameof(ClassWeights));
        }
        return classWeights;
    }
}
