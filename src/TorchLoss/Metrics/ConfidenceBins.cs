using static TorchSharp.torch;

namespace TorchLoss.Metrics;

/// <summary>
/// The equal-width confidence bins of ECE, MCE and reliability diagrams, with exact rational edges b/M that do not
/// depend on the libtorch version. A confidence c is binned as float32 (torchmetrics bins float32 confidences too):
/// slot b = floor(c·M), computed in float64, where c·M is exact (a float32 has 24 significant bits and M at most
/// 2^24, so the product fits the 53 of a float64). Slot b &lt; M holds b/M ≤ c &lt; (b+1)/M; a confidence of exactly 1
/// gets slot M of its own, as <c>torch.bucketize(c, linspace(0, 1, M + 1), right=True) - 1</c> gives it in torchmetrics.
/// Only the edges differ from torchmetrics: its float32 <c>linspace</c> edge can lie a float32 step or so off b/M, and a
/// confidence between the two falls in the neighbouring bin there; where that happens depends on the libtorch version.
/// </summary>
internal static class ConfidenceBins
{
    /// <summary>
    /// The slot (0…M, int64) of each confidence, on its device and without reading values back. Confidences outside
    /// [0, 1] are clamped into the first or last slot (a softmax gives none; rows that are not counted hold 0).
    /// </summary>
    public static Tensor Index(Tensor confidence, int bins) =>
        confidence.to(ScalarType.Float32).to(ScalarType.Float64).mul(bins).floor().clamp(0, bins).to(ScalarType.Int64);
}
