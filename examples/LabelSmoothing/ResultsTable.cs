using System.Globalization;
using System.Text;

namespace LabelSmoothing;

/// <summary>The experiment's results as a markdown table (console and results.md).</summary>
public static class ResultsTable
{
    /// <summary>One row per run: unsmoothed NLL, perplexity, accuracy, top-k accuracy, ECE, MCE, confidence, confidence − accuracy, entropy, Brier score, time.</summary>
    public static string Format(IReadOnlyList<RunResult> results)
    {
        ArgumentNullException.ThrowIfNull(results);
        int k = results.Count > 0 ? results[0].Calibration.TopK : 0;
        var text = new StringBuilder();
        text.AppendLine($"| run | val NLL (nats/char) | perplexity | accuracy | top-{k} | ECE | MCE | mean confidence | confidence − accuracy | mean entropy (nats) | Brier | train s |");
        text.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in results)
        {
            var c = r.Calibration;
            text.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {r.Name} | {r.MeanNll:F4} | {r.Perplexity:F3} | {c.Accuracy:P2} | {c.TopKAccuracy:P2} | {c.Ece:F4} | {c.Mce:F4} | {c.MeanConfidence:P2} | {Signed(c.Overconfidence * 100)} pt | {c.MeanEntropy:F4} | {c.Brier:F4} | {(r.TrainSeconds > 0 ? r.TrainSeconds.ToString("F0", CultureInfo.InvariantCulture) : "–")} |"));
        }
        return text.ToString();
    }

    /// <summary>"+1.23" or "−1.23"; a value that rounds to zero prints as "0.00".</summary>
    private static string Signed(double value)
    {
        string magnitude = Math.Abs(value).ToString("0.00", CultureInfo.InvariantCulture);
        return magnitude == "0.00" ? magnitude : (value > 0 ? "+" : "−") + magnitude;
    }
}
