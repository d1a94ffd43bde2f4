using System.Globalization;
using System.Text;

namespace TinyGpt;

/// <summary>Writes a run's per-step metrics as CSV: step, lr, train loss and perplexity, validation loss and perplexity (empty when not evaluated), seconds.</summary>
public static class MetricsCsv
{
    /// <summary>Writes <paramref name="rows"/> to <paramref name="path"/>, through a temporary file.</summary>
    public static void Write(string path, IEnumerable<MetricsRow> rows)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(rows);
        var text = new StringBuilder("step,lr,train_loss,train_ppl,val_loss,val_ppl,elapsed_seconds\n");
        foreach (var r in rows)
        {
            text.Append(CultureInfo.InvariantCulture,
                $"{r.Step},{r.LearningRate:G6},{r.TrainLoss:F6},{r.TrainPerplexity:F4},{r.ValLoss?.ToString("F6", CultureInfo.InvariantCulture)},{r.ValPerplexity?.ToString("F4", CultureInfo.InvariantCulture)},{r.ElapsedSeconds:F2}\n");
        }
        AtomicFile.WriteAllText(path, text.ToString());
    }
}
