namespace TorchLoss.Metrics;

/// <summary>
/// One confidence bin of a reliability diagram: the tokens whose float32 top-1 probability fell in
/// [<see cref="Lower"/>, <see cref="Upper"/>) (edges b/M rounded to float32; the last bin also holds the confidences of
/// exactly 1, which ECE and MCE count as a bin of their own), their mean confidence and how often their top-1 prediction was right. A calibrated model has
/// <see cref="Accuracy"/> ≈ <see cref="MeanConfidence"/> in every bin.
/// </summary>
/// <param name="Lower">Lower edge of the bin, b/M (inclusive, as float32).</param>
/// <param name="Upper">Upper edge of the bin, (b+1)/M (exclusive, except 1 for the last bin).</param>
/// <param name="Count">Tokens in the bin.</param>
/// <param name="MeanConfidence">Mean top-1 probability of those tokens; NaN for an empty bin.</param>
/// <param name="Accuracy">Share of those tokens whose top-1 prediction was the target; NaN for an empty bin.</param>
public readonly record struct ReliabilityBin(double Lower, double Upper, long Count, double MeanConfidence, double Accuracy);
