using TinyGpt;

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
        var table = new TextTable([.. runs.Select(r => r.Mode == LossMode.Full ? "full loss" : "assistant-only").Prepend("metric")]);
        foreach (var (metric, value) in rows)
            table.Row([.. runs.Select(value).Prepend(metric)]);
        return table.ToMarkdown();
    }
}
