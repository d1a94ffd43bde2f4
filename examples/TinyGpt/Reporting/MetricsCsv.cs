using System.Globalization;
using System.Text;

namespace TinyGpt;

/// <summary>
/// Writes a run's per-step metrics as CSV: step, lr, train loss and perplexity, validation loss and perplexity (empty when
/// not evaluated), seconds, then any extra columns.
/// </summary>
public static class MetricsCsv
{
    /// <summary>Writes <paramref name="rows"/> to <paramref name="path"/>, through a temporary file.</summary>
    /// <param name="path">The file.</param>
    /// <param name="rows">One row per step.</param>
    /// <param name="extraColumns">Columns appended after the standard ones; null or empty for none.</param>
    public static void Write(string path, IEnumerable<MetricsRow> rows, IReadOnlyList<MetricsColumn>? extraColumns = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(rows);
        var extra = extraColumns ?? [];
        var text = new StringBuilder("step,lr,train_loss,train_ppl,val_loss,val_ppl,elapsed_seconds");
        foreach (var column in extra)
            text.Append(',').Append(column.Name);
        text.Append('\n');
        foreach (var r in rows)
        {
            text.Append(CultureInfo.InvariantCulture,
                $"{r.Step},{r.LearningRate:G6},{r.TrainLoss:F6},{r.TrainPerplexity:F4},{r.ValLoss?.ToString("F6", CultureInfo.InvariantCulture)},{r.ValPerplexity?.ToString("F4", CultureInfo.InvariantCulture)},{r.ElapsedSeconds:F2}");
            foreach (var column in extra)
                text.Append(',').Append(column.ValueAtStep.GetValueOrDefault(r.Step));
            text.Append('\n');
        }
        AtomicFile.WriteAllText(path, text.ToString());
    }
}
