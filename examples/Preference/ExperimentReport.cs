using System.Globalization;
using System.Text;
using TinyGpt;

namespace Preference;

/// <summary>Writes the experiment's outputs: results.md (setup and table), curves.csv (every held-out measurement) and preference.png.</summary>
public static class ExperimentReport
{
    /// <summary>What was written, and where.</summary>
    /// <param name="Markdown">The contents of results.md.</param>
    /// <param name="MarkdownPath">Path of results.md.</param>
    /// <param name="CsvPath">Path of curves.csv.</param>
    /// <param name="ChartPath">Path of preference.png.</param>
    public sealed record Written(string Markdown, string MarkdownPath, string CsvPath, string ChartPath);

    /// <summary>Writes the files into <see cref="ExperimentOptions.Out"/>.</summary>
    public static Written Write(ExperimentOptions options, IReadOnlyList<RunResult> results, double wallSeconds)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(results);
        string outDir = Path.GetFullPath(options.Out);
        Directory.CreateDirectory(outDir);
        var markdown = new StringBuilder()
            .AppendLine(CultureInfo.InvariantCulture,
                $"Preference tuning after SFT on answers right half the time: {options.Layers}L/{options.Heads}H/{options.Dim}D GPT, SFT {options.SftSteps} steps of {options.SftBatch} " +
                $"on {options.SftQuestions} questions; per loss {options.Steps} steps of {options.Batch} pairs from {options.Pairs}, learning rate {options.LearningRate}, seed {options.Seed}; " +
                $"{options.HeldOut} held-out pairs about new words; values before → after; wall time {wallSeconds:F0} s.")
            .AppendLine()
            .Append(ResultsTable.Format(results))
            .ToString();
        string markdownPath = Path.Combine(outDir, "results.md");
        AtomicFile.WriteAllText(markdownPath, markdown);
        string csvPath = Path.Combine(outDir, "curves.csv");
        AtomicFile.WriteAllText(csvPath, Csv(results));
        string chartPath = Path.Combine(outDir, "preference.png");
        PreferenceChart.Write(chartPath, results);
        return new Written(markdown, markdownPath, csvPath, chartPath);
    }

    private static string Csv(IReadOnlyList<RunResult> results)
    {
        var text = new StringBuilder("loss,step,reward_accuracy,reward_margin,logp_chosen,logp_rejected,prefers_chosen,kl_from_reference,follows_rule,answers_other_end\n");
        foreach (var r in results)
            foreach (var m in r.Curve)
                text.AppendLine(string.Create(CultureInfo.InvariantCulture,
                    $"{r.Loss.Name},{m.Step},{m.RewardAccuracy:R},{m.RewardMargin:R},{m.ChosenLogProb:R},{m.RejectedLogProb:R},{m.PrefersChosen:R},{m.KlFromReference:R},{m.FollowsRule:R},{m.AnswersOtherEnd:R}"));
        return text.ToString();
    }
}
