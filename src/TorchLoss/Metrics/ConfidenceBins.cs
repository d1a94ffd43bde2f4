using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss.Metrics;

/// <summary>
/// The equal-width confidence bins of ECE, MCE and reliability diagrams, on torchmetrics' convention but with edges
/// that do not depend on the libtorch version. A confidence is binned as float32 (torchmetrics bins float32 confidences
/// too): with e_b = b/M rounded to the nearest float32 (ties to even), slot b &lt; M holds e_b ≤ c &lt; e_(b+1), and a
/// confidence of exactly 1 gets slot M of its own, as <c>torch.bucketize(c, edges, right=True) - 1</c> gives it in
/// torchmetrics. Only the edges can differ: torchmetrics takes them from float32 <c>torch.linspace(0, 1, M + 1)</c>,
/// which is one or two float32 steps off the correctly rounded b/M at some edges, at which ones depends on the libtorch version.
/// </summary>
internal sealed class ConfidenceBins
{
    private readonly StateTensor _edges;   // float32 [M + 1]: e_0 = 0, …, e_M = 1

    /// <summary>Declares the edges of <paramref name="bins"/> bins as a constant of <paramref name="state"/>.</summary>
    public ConfidenceBins(int bins, TrackerState state)
    {
        Count = bins;
        _edges = state.Constant(tensor(Edges(bins)));
    }

    /// <summary>M, the bins of a reliability diagram.</summary>
    public int Count { get; }

    /// <summary>
    /// e_b = b/M correctly rounded to float32, b = 0…M. The double b/M is correctly rounded, and rounding it again
    /// to float32 cannot land differently for M below 2^29: a float32 rounding boundary is a dyadic rational with
    /// 25 significant bits, at least 2^-25·e_b/M away from b/M, far more than the double's error of 2^-53·e_b.
    /// </summary>
    public static float[] Edges(int bins) => Enumerable.Range(0, bins + 1).Select(b => (float)((double)b / bins)).ToArray();

    /// <summary>
    /// The slot (0…M, int64) of each confidence, on its device and without reading values back. Confidences outside
    /// [0, 1] are clamped into the first or last slot (a softmax gives none; rows that are not counted hold 0).
    /// </summary>
    public Tensor Index(Tensor confidence)
    {
        var edges = _edges.Value.to(confidence.device);
        return bucketize(confidence.to(ScalarType.Float32), edges, right: true).sub(1).clamp(0, Count);
    }
}
