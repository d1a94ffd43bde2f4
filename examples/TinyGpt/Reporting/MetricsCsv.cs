using System.Globalization;
using System.Text;

namespace TinyGpt;

/// <summary>
/// Writes a run's per-step metrics as CSV: step, lr, train loss and perplexity, validation loss, perplexity, accuracy,
/// ECE and mean confidence (empty when not evaluated or not measured), seconds.
/// </summary>
public static class MetricsCsv
{
    /// <summary>Writes <paramref name="rows"/> to <paramref name="path"/>, through a temporary file.</summary>
    public static void Write(string path, IEnumerable<MetricsRow> rows)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(rows);
        var text = new StringBuilder("step,lr,train_loss,train_ppl,val_loss,val_ppl,val_accuracy,val_ece,val_confidence,elapsed_seconds\n");
        foreach (var r in rows)
        {
            text.Append(CultureInfo.InvariantCulture,
                $"{r.Step},{r.LearningRate:G6},{r.TrainLoss:F6},{r.TrainPerplexity:F4},{Format(r.ValLoss, "F6")},{Format(r.ValPerplexity, "F4")},{Format(r.ValAccuracy, "F6")},{Format(r.ValEce, "F6")},{Format(r.ValConfidence, "F6")},{r.ElapsedSeconds:F2}\n");
        }
        AtomicFile.WriteAllText(path, text.ToString());
    }

    private static string? Format(double? value, string format) => value?.ToString(format, CultureInfo.InvariantCulture);
}
