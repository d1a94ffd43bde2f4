using System.Text.Json.Serialization;

namespace TorchLoss.Metrics;

/// <summary>
/// The running totals of a <see cref="CalibrationTracker"/> at one moment, as plain values: every metric (accuracy,
/// confidence, entropy, Brier score, ECE, MCE, reliability bins) is derived from them, so a snapshot serialised
/// with System.Text.Json and handed to <see cref="CalibrationTracker.Restore"/> resumes exactly.
/// </summary>
/// <param name="Bins">Number of equal-width confidence bins.</param>
/// <param name="TopK">k of <see cref="TopKAccuracy"/>.</param>
/// <param name="Updates">Number of updates folded in.</param>
/// <param name="Tokens">Counted tokens: not ignored, not masked, with finite logits.</param>
/// <param name="Top1Correct">Counted tokens whose most probable class was the target.</param>
/// <param name="TopKCorrect">Counted tokens whose target was among the <paramref name="TopK"/> most probable classes.</param>
/// <param name="ConfidenceSum">Σ top-1 probability over counted tokens.</param>
/// <param name="EntropySum">Σ predictive entropy −Σ_c p_c ln p_c over counted tokens, in nats.</param>
/// <param name="BrierSum">Σ over counted tokens of the multi-class Brier score Σ_c (p_c − 1[c = target])².</param>
/// <param name="SkippedRows">Tokens that would have been counted but whose logits held NaN or ±∞; left out of every total.</param>
/// <param name="BinCounts">Counted tokens per confidence bin.</param>
/// <param name="BinConfidenceSums">Σ top-1 probability per bin.</param>
/// <param name="BinCorrect">Counted tokens per bin whose top-1 prediction was right.</param>
public sealed record CalibrationSnapshot(
    int Bins, int TopK, long Updates, long Tokens, long Top1Correct, long TopKCorrect,
    double ConfidenceSum, double EntropySum, double BrierSum, long SkippedRows,
    long[] BinCounts, double[] BinConfidenceSums, long[] BinCorrect)
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
    /// Σ_b (n_b / N) |accuracy_b − confidence_b| over the confidence bins; NaN with zero tokens.
    /// </summary>
    [JsonIgnore]
    public double Ece
    {
        get
        {
            double sum = 0;
            for (int b = 0; b < BinCounts.Length; b++) sum += Math.Abs(BinCorrect[b] - BinConfidenceSums[b]);
            return sum / Tokens;
        }
    }

    /// <summary>Maximum calibration error: the largest |accuracy_b − confidence_b| over non-empty bins; NaN with zero tokens.</summary>
    [JsonIgnore]
    public double Mce => Tokens == 0 ? double.NaN : ReliabilityBins().Where(b => b.Count > 0).Max(b => Math.Abs(b.Accuracy - b.MeanConfidence));

    /// <summary>The bins of a reliability diagram, lowest confidence first.</summary>
    public IReadOnlyList<ReliabilityBin> ReliabilityBins() =>
        Enumerable.Range(0, BinCounts.Length)
            .Select(b => new ReliabilityBin((double)b / Bins, (double)(b + 1) / Bins, BinCounts[b],
                BinCounts[b] == 0 ? double.NaN : BinConfidenceSums[b] / BinCounts[b],
                BinCounts[b] == 0 ? double.NaN : (double)BinCorrect[b] / BinCounts[b]))
            .ToArray();
}
