using System.Text.Json.Serialization;

namespace TorchLoss.Metrics;

/// <summary>
/// The running totals of a <see cref="CalibrationTracker"/> at one moment, as plain values: every metric (accuracy,
/// confidence, entropy, Brier score, ECE, MCE, reliability bins) is derived from them, so a snapshot serialised
/// with System.Text.Json and handed to <see cref="CalibrationTracker.Restore"/> resumes exactly.
/// </summary>
/// <remarks>
/// The per-bin arrays have <see cref="Bins"/> entries, bin b covering float32 confidences c with e_b ≤ c &lt; e_(b+1),
/// e_b = b/M correctly rounded to float32 (see <see cref="CalibrationTracker"/>); tokens of confidence exactly 1 are counted apart
/// (<see cref="CertainTokens"/>, torchmetrics' extra bin), so that <see cref="Ece"/> and <see cref="Mce"/> follow
/// torchmetrics' definition (binned on version-independent edges, see <see cref="CalibrationTracker"/>) while <see cref="ReliabilityBins"/> still has <see cref="Bins"/> bins. JSON written before the certain
/// tokens were counted apart has no such fields; it reads with zeros there (those tokens stay in the last bin).
/// </remarks>
/// <param name="Bins">Number of equal-width confidence bins, M.</param>
/// <param name="TopK">k of <see cref="TopKAccuracy"/>.</param>
/// <param name="Updates">Number of updates folded in.</param>
/// <param name="Tokens">Counted tokens: not ignored, not masked, with finite logits.</param>
/// <param name="Top1Correct">Counted tokens whose most probable class was the target.</param>
/// <param name="TopKCorrect">Counted tokens whose target was among the <paramref name="TopK"/> most probable classes.</param>
/// <param name="ConfidenceSum">Σ top-1 probability over counted tokens.</param>
/// <param name="EntropySum">Σ predictive entropy −Σ_c p_c ln p_c over counted tokens, in nats.</param>
/// <param name="BrierSum">Σ over counted tokens of the multi-class Brier score Σ_c (p_c − 1[c = target])².</param>
/// <param name="SkippedRows">Tokens that would have been counted but whose logits held NaN or ±∞; left out of every total.</param>
/// <param name="BinCounts">Counted tokens per confidence bin (M entries), those of confidence exactly 1 not included.</param>
/// <param name="BinConfidenceSums">Σ top-1 probability per bin.</param>
/// <param name="BinCorrect">Counted tokens per bin whose top-1 prediction was right.</param>
/// <param name="CertainTokens">Counted tokens whose top-1 probability, as float32, is exactly 1 (torchmetrics' bin M).</param>
/// <param name="CertainConfidenceSum">Σ top-1 probability of those tokens (in float64; below <paramref name="CertainTokens"/> by at most 2^-25 each).</param>
/// <param name="CertainCorrect">Those tokens whose top-1 prediction was right.</param>
public sealed record CalibrationSnapshot(
    int Bins, int TopK, long Updates, long Tokens, long Top1Correct, long TopKCorrect,
    double ConfidenceSum, double EntropySum, double BrierSum, long SkippedRows,
    long[] BinCounts, double[] BinConfidenceSums, long[] BinCorrect,
    long CertainTokens = 0, double CertainConfidenceSum = 0, long CertainCorrect = 0)
{
    /// <summary>Share of counted tokens whose top-1 prediction was right; NaN with zero tokens.</summary>
    [JsonIgnore]
    public double Accuracy => (double)Top1Correct / Tokens;

    /// <summary>Share of counted tokens whose target was among the <see cref="TopK"/> most probable classes; NaN with zero tokens.</summary>
    [JsonIgnore]
    public double TopKAccuracy => (double)TopKCorrect / Tokens;

    /// <summary>Mean top-1 probability; NaN with zero tokens.</summary>
    [JsonIgnore]
    public double MeanConfidence => ConfidenceSum / Tokens;

    /// <summary><see cref="MeanConfidence"/> − <see cref="Accuracy"/>: positive when over-confident, negative when under-confident.</summary>
    [JsonIgnore]
    public double Overconfidence => MeanConfidence - Accuracy;

    /// <summary>Mean predictive entropy in nats; NaN with zero tokens.</summary>
    [JsonIgnore]
    public double MeanEntropy => EntropySum / Tokens;

    /// <summary>Mean multi-class Brier score Σ_c (p_c − 1[c = target])², in [0, 2]; NaN with zero tokens.</summary>
    [JsonIgnore]
    public double Brier => BrierSum / Tokens;

    /// <summary>
    /// Expected calibration error, L1 form (Guo et al. 2017; torchmetrics' <c>CalibrationError(norm="l1")</c>):
    /// Σ_b (n_b / N) |accuracy_b − confidence_b| over the M bins and the bin of confidence exactly 1; NaN with zero tokens.
    /// </summary>
    [JsonIgnore]
    public double Ece => ErrorBins().Sum(b => Math.Abs(b.Correct - b.ConfidenceSum)) / Tokens;

    /// <summary>
    /// Maximum calibration error (torchmetrics' <c>norm="max"</c>): the largest |accuracy_b − confidence_b| over the
    /// non-empty bins, the bin of confidence exactly 1 included; NaN with zero tokens.
    /// </summary>
    [JsonIgnore]
    public double Mce => Tokens == 0 ? double.NaN : ErrorBins().Where(b => b.Count > 0).Max(b => Math.Abs(b.Correct - b.ConfidenceSum) / b.Count);

    /// <summary>
    /// The <see cref="Bins"/> bins of a reliability diagram, lowest confidence first; the last one also holds the
    /// tokens of confidence exactly 1 (so it covers [(M−1)/M, 1]).
    /// </summary>
    public IReadOnlyList<ReliabilityBin> ReliabilityBins() =>
        Enumerable.Range(0, BinCounts.Length)
            .Select(b =>
            {
                bool last = b == BinCounts.Length - 1;
                long count = BinCounts[b] + (last ? CertainTokens : 0);
                double confidence = BinConfidenceSums[b] + (last ? CertainConfidenceSum : 0);
                long correct = BinCorrect[b] + (last ? CertainCorrect : 0);
                return new ReliabilityBin((double)b / Bins, (double)(b + 1) / Bins, count,
                    count == 0 ? double.NaN : confidence / count, count == 0 ? double.NaN : (double)correct / count);
            })
            .ToArray();

    /// <summary>The bins ECE and MCE sum over, as torchmetrics has them: the M bins, then the one of confidence exactly 1.</summary>
    private IEnumerable<(long Count, double ConfidenceSum, long Correct)> ErrorBins() =>
        Enumerable.Range(0, BinCounts.Length).Select(b => (BinCounts[b], BinConfidenceSums[b], BinCorrect[b]))
            .Append((CertainTokens, CertainConfidenceSum, CertainCorrect));
}
