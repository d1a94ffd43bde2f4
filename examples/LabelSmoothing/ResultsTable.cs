using System.Globalization;
using TinyGpt;

namespace LabelSmoothing;

/// <summary>The experiment's results as a markdown table (console and results.md).</summary>
public static class ResultsTable
{
    /// <summary>One row per run: unsmoothed NLL, perplexity, accuracy, top-k accuracy, ECE, MCE, confidence, confidence − accuracy, entropy, Brier score, time.</summary>
    public static string Format(IReadOnlyList<RunResult> results)
    {
        ArgumentNullException.ThrowIfNull(results);
        int k = results.Count > 0 ? results[0].Calibration.TopK : 0;
        var table = new TextTable("run", "val NLL (nats/char)", "perplexity", "accuracy", $"top-{k}", "ECE", "MCE", "mean confidence",
            "confidence − accuracy", "mean entropy (nats)", "Brier", "train s");
        foreach (var r in results)
        {
            var c = r.Calibration;
            table.Row(r.Name, F(r.MeanNll, "F4"), F(r.Perplexity, "F3"), F(c.Accuracy, "P2"), F(c.TopKAccuracy, "P2"), F(c.Ece, "F4"), F(c.Mce, "F4"),
                F(c.MeanConfidence, "P2"), $"{Signed(c.Overconfidence * 100)} pt", F(c.MeanEntropy, "F4"), F(c.Brier, "F4"), r.TrainSeconds > 0 ? F(r.TrainSeconds, "F0") : "–");
        }
        return table.ToMarkdown();
    }

    private static string F(double value, string format) => value.ToString(format, CultureInfo.InvariantCulture);

    /// <summary>"+1.23" or "−1.23"; a value that rounds to zero prints as "0.00".</summary>
    private static string Signed(double value)
    {
        string magnitude = Math.Abs(value).ToString("0.00", CultureInfo.InvariantCulture);
        return magnitude == "0.00" ? magnitude : (value > 0 ? "+" : "−") + magnitude;
    }
}
