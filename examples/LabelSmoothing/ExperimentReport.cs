using System.Globalization;
using System.Text;
using TinyGpt;

namespace LabelSmoothing;

/// <summary>Writes the experiment's outputs: results.md (the table and the setup) and reliability.png (every run's diagram).</summary>
public static class ExperimentReport
{
    /// <summary>What was written, and where.</summary>
    /// <param name="Markdown">The contents of results.md.</param>
    /// <param name="MarkdownPath">Path of results.md.</param>
    /// <param name="ChartPath">Path of reliability.png.</param>
    public sealed record Written(string Markdown, string MarkdownPath, string ChartPath);

    /// <summary>Writes both files into <see cref="LabelSmoothingOptions.Out"/>.</summary>
    public static Written Write(LabelSmoothingOptions options, IReadOnlyList<RunResult> results, double wallSeconds)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(results);
        string outDir = Path.GetFullPath(options.Out);
        Directory.CreateDirectory(outDir);
        var markdown = new StringBuilder()
            .AppendLine(CultureInfo.InvariantCulture, $"Label smoothing on {(options.Corpus is null ? "the embedded Markov corpus" : Path.GetFileName(options.Corpus))}: " +
                $"{options.Model.Layers}L/{options.Model.Heads}H/{options.Model.Dim}D, context {options.Model.ContextLength}, {options.Trainer.Steps} steps of {options.Batch} windows, seed {options.Trainer.Seed}; " +
                $"validation on the whole split (windows overlapping by one character); ECE over 15 equal-width bins; wall time {wallSeconds:F0} s.")
            .AppendLine()
            .Append(ResultsTable.Format(results))
            .ToString();
        string markdownPath = Path.Combine(outDir, "results.md");
        AtomicFile.WriteAllText(markdownPath, markdown);
        string chartPath = Path.Combine(outDir, "reliability.png");
        ReliabilityChart.Write(chartPath, results.Select(r => (r.Name, r.Calibration)).ToArray());
        return new Written(markdown, markdownPath, chartPath);
    }
}
