using System.Globalization;
using System.Text;

namespace TinyGpt;

/// <summary>
/// Writes a run's per-step metrics as CSV: step, lr, train loss and perplexity, validation loss, perplexity, accuracy,
/// ECE and mean confidence (empty when not evaluated or not measured), the elapsed seconds (training plus validation) and
/// each part, then any extra columns.
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
        var text = new StringBuilder("step,lr,train_loss,train_ppl,val_loss,val_ppl,val_accuracy,val_ece,val_confidence,elapsed_seconds,train_seconds,eval_seconds");
        foreach (var column in extra)
            text.Append(',').Append(column.Name);
        text.Append('\n');
        foreach (var r in rows)
        {
            text.Append(CultureInfo.InvariantCulture,
                $"{r.Step},{r.LearningRate:G6},{r.TrainLoss:F6},{r.TrainPerplexity:F4},{Format(r.ValLoss, "F6")},{Format(r.ValPerplexity, "F4")},{Format(r.ValAccuracy, "F6")},{Format(r.ValEce, "F6")},{Format(r.ValConfidence, "F6")},{r.ElapsedSeconds:F2},{r.TrainSeconds:F2},{r.EvalSeconds:F2}");
            foreach (var column in extra)
                text.Append(',').Append(column.ValueAtStep.GetValueOrDefault(r.Step));
            text.Append('\n');
        }
        AtomicFile.WriteAllText(path, text.ToString());
    }

    private static string? Format(double? value, string format) => value?.ToString(format, CultureInfo.InvariantCulture);
}
