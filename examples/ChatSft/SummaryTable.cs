using System.Text;

namespace ChatSft;

/// <summary>The closing summary: one column per run.</summary>
public static class SummaryTable
{
    /// <summary>A Markdown table of the runs' held-out results.</summary>
    public static string Format(IReadOnlyList<RunResult> runs)
    {
        ArgumentNullException.ThrowIfNull(runs);
        var rows = new (string Metric, Func<RunResult, string> Value)[]
        {
            ("assistant-token perplexity (held out)", r => r.AssistantPerplexity.ToString("F3")),
            ("exact-match accuracy (greedy)", r => r.Answers.ExactMatchRate.ToString("P1")),
            ("stops at the end-of-turn", r => r.Answers.StopRate.ToString("P1")),
            ("goes on to write a \"User:\" turn", r => r.Answers.UserTurnRate.ToString("P1")),
            ("tokens counted by the loss", r => r.TrainedTokens.ToString("N0")),
            ("training time", r => $"{r.Seconds:F0} s"),
        };
        var headers = runs.Select(r => r.Mode == LossMode.Full ? "full loss" : "assistant-only").ToList();
        int metricWidth = rows.Max(r => r.Metric.Length);
        var widths = headers.Select((h, i) => Math.Max(h.Length, rows.Max(r => r.Value(runs[i]).Length))).ToList();
        var text = new StringBuilder();
        text.Append("| ").Append("metric".PadRight(metricWidth));
        for (int i = 0; i < runs.Count; i++) text.Append(" | ").Append(headers[i].PadLeft(widths[i]));
        text.AppendLine(" |");
        text.Append('|').Append(new string('-', metricWidth + 2));
        for (int i = 0; i < runs.Count; i++) text.Append('|').Append(new string('-', widths[i] + 1)).Append(':');
        text.AppendLine("|");
        foreach (var (metric, value) in rows)
        {
            text.Append("| ").Append(metric.PadRight(metricWidth));
            for (int i = 0; i < runs.Count; i++) text.Append(" | ").Append(value(runs[i]).PadLeft(widths[i]));
            text.AppendLine(" |");
        }
        return text.ToString();
    }
}
