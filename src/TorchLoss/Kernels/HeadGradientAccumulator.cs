using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss.Kernels;

/// <summary>
/// Builds the gradients of hidden [N, d], weight [V, d] and bias [V] of <c>cross_entropy(hidden·weightᵀ + bias)</c>
/// chunk of rows by chunk of rows from each chunk's softmax P, without forming the gradient of the logits.
/// </summary>
/// <remarks>
/// <para>Row i's logit gradient is <c>f_i·p_i − s_i·c − a_i·e_(t_i)</c>: a softmax part with the row factor
/// <c>f_i = r_i·(S_i + 2w·lse_i)</c>, a smoothing part that is the same vector c (the class weights, or ones) on every
/// row, scaled by <c>s_i = r_i·ε/K</c>, and the target part <c>a_i = r_i·(1−ε)·c_(t_i)</c> (r_i is the row's gradient
/// scale, 0 for uncounted rows). Only the softmax part needs the two big matmuls; the other two are closed forms:
/// the smoothing part is rank one (it needs Σ_j c_j·weight_j once and Σ_i s_i·hidden_i), the target part one row of
/// weight per row.</para>
/// <para>Gradient filtering: where the softmax of every row of a chunk is below a cut-off in a vocabulary column,
/// that column's share of both matmuls is skipped (it changes each row's logit gradient by less than cut-off × V
/// in L1 norm). The columns that remain are gathered, so skippable columns need not be contiguous.</para>
/// </remarks>
internal sealed class HeadGradientAccumulator : IDisposable
{
    /// <summary>Above this fraction of active columns the full matmuls are cheaper than gathering the active ones.</summary>
    private const double GatherBelowFraction = 0.6;

    private readonly Tensor weight;
    private readonly Tensor? classWeights;
    private readonly Tensor? weightedRowSum;
    private readonly Tensor? smoothingHidden;
    private double smoothingTotal;
    private readonly double cutoff;

    /// <summary>Zeroed gradients for the wanted inputs (null = not wanted).</summary>
    public HeadGradientAccumulator(Tensor hidden, Tensor weight, Tensor? bias, bool wantHidden, bool wantWeight, bool wantBias,
        double[]? classWeights, bool smoothing, double cutoff)
    {
        this.weight = weight;
        this.cutoff = cutoff;
        Hidden = wantHidden ? empty_like(hidden) : null;
        Weight = wantWeight ? zeros_like(weight) : null;
        Bias = wantBias ? zeros_like(bias!) : null;
        // Owned here and freed in Dispose, whatever dispose scope the caller has open.
        this.classWeights = classWeights is null ? null : tensor(classWeights, weight.dtype, weight.device).DetachFromDisposeScope();
        if (smoothing && wantHidden)
        {
            using var _ = NewDisposeScope();
            weightedRowSum = (this.classWeights is null ? weight.sum(dim: 0) : this.classWeights.matmul(weight)).DetachFromDisposeScope();
        }
        if (smoothing && wantWeight)
            smoothingHidden = zeros(hidden.shape[1], weight.dtype, weight.device).DetachFromDisposeScope();
    }

    /// <summary>∂loss/∂hidden, or null.</summary>
    public Tensor? Hidden { get; }

    /// <summary>∂loss/∂weight, or null.</summary>
    public Tensor? Weight { get; }

    /// <summary>∂loss/∂bias, or null.</summary>
    public Tensor? Bias { get; }

    /// <summary>Columns kept over all chunks so far (for the benchmark's and tests' view of the filter).</summary>
    public long ActiveColumns { get; private set; }

    /// <summary>Columns looked at over all chunks so far.</summary>
    public long TotalColumns { get; private set; }

    /// <summary>
    /// Adds the rows <paramref name="start"/> … of one chunk: its hidden states <paramref name="h"/> [R, d], its softmax
    /// <paramref name="probabilities"/> [R, V] (0 on uncounted rows), the factors f, s, a per row and the targets (any
    /// valid class on uncounted rows, whose factors are 0).
    /// </summary>
    public void AddChunk(long start, Tensor h, Tensor probabilities, double[] f, double[] s, double[] a, long[] safeTargets)
    {
        using var chunkScope = NewDisposeScope();
        long rows = h.shape[0];
        long classes = probabilities.shape[1];
        var dtype = h.dtype;
        var fColumn = tensor(f, dtype, h.device).unsqueeze(1);
        var aColumn = tensor(a, dtype, h.device).unsqueeze(1);
        var target = tensor(safeTargets, ScalarType.Int64, h.device);

        Tensor? active = null;
        if (cutoff > 0)
        {
            var kept = probabilities.amax(0).ge(cutoff).nonzero().squeeze(1);
            if (kept.shape[0] < GatherBelowFraction * classes) active = kept;
        }
        ActiveColumns += active?.shape[0] ?? classes;
        TotalColumns += classes;
        var p = active is null ? probabilities : probabilities.index_select(1, active);
        var w = active is null ? weight : weight.index_select(0, active);

        if (Hidden is not null)
        {
            var gh = Hidden.narrow(0, start, rows);
            if (p.shape[1] == 0) gh.zero_();
            else gh.addmm_(p, w, beta: 0, alpha: 1).mul_(fColumn);
            gh.sub_(weight.index_select(0, target).mul_(aColumn));
            if (weightedRowSum is not null) gh.sub_(tensor(s, dtype, h.device).unsqueeze(1) * weightedRowSum);
        }
        if (Weight is not null)
        {
            var fh = h * fColumn;
            if (active is null) Weight.addmm_(p.t(), fh);
            else if (p.shape[1] > 0) Weight.index_add_(0, active, p.t().mm(fh), 1.0);
            Weight.index_add_(0, target, h * aColumn, -1.0);
            if (smoothingHidden is not null) smoothingHidden.add_(tensor(s, dtype, h.device).matmul(h));
        }
        if (Bias is not null)
        {
            Bias.addmv_(probabilities.t(), fColumn.squeeze(1));
            Bias.index_add_(0, target, aColumn.squeeze(1), -1.0);
        }
        foreach (double v in s) smoothingTotal += v;
    }

    /// <summary>Adds the smoothing parts that are the same for every chunk (rank one in weight, a constant in bias).</summary>
    public void Finish()
    {
        using var finishScope = NewDisposeScope();
        if (Weight is not null && smoothingHidden is not null)
        {
            if (classWeights is null) Weight.sub_(smoothingHidden.unsqueeze(0));
            else Weight.addr_(classWeights, smoothingHidden, beta: 1, alpha: -1);
        }
        if (Bias is not null && smoothingTotal != 0)
        {
            if (classWeights is null) Bias.sub_(smoothingTotal);
            else Bias.sub_(classWeights * smoothingTotal);
        }
    }

    /// <summary>Frees the set-up tensors (not the gradients).</summary>
    public void Dispose()
    {
        classWeights?.Dispose();
        weightedRowSum?.Dispose();
        smoothingHidden?.Dispose();
    }
}
