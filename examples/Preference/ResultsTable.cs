using System.Globalization;
using System.Text;

namespace Preference;

/// <summary>The experiment's results as a markdown table (console and results.md): one row per loss, held-out values before → after, and the rule share and reward accuracy on training pairs.</summary>
public static class ResultsTable
{
    /// <summary>The table; <paramref name="results"/> all start from the same SFT model.</summary>
    public static string Format(IReadOnlyList<RunResult> results)
    {
        ArgumentNullException.ThrowIfNull(results);
        var text = new StringBuilder();
        text.AppendLine("| loss | follows the rule (greedy) | answers the other end | reward accuracy | reward margin | prefers chosen (Σ log p) | log p chosen | log p rejected | KL(π‖π_ref) nats/token | training pairs: rule, reward accuracy | s |");
        text.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in results)
        {
            var (b, a) = (r.Before, r.After);
            text.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {r.Loss.Name} | {Change(b.FollowsRule, a.FollowsRule, "P1")} | {Change(b.AnswersOtherEnd, a.AnswersOtherEnd, "P1")} | {Change(b.RewardAccuracy, a.RewardAccuracy, "P1")} | " +
                $"{Change(b.RewardMargin, a.RewardMargin, "F3")} | {Change(b.PrefersChosen, a.PrefersChosen, "P1")} | {Change(b.ChosenLogProb, a.ChosenLogProb, "F3")} | " +
                $"{Change(b.RejectedLogProb, a.RejectedLogProb, "F3")} | {a.KlFromReference:F4} | " +
                $"{Change(r.TrainedPairs.Before.FollowsRule, r.TrainedPairs.After.FollowsRule, "P1")}, {Change(r.TrainedPairs.Before.RewardAccuracy, r.TrainedPairs.After.RewardAccuracy, "P1")} | {r.Seconds:F0} |"));
        }
        return text.ToString();
    }

    private static string Change(double before, double after, string format) =>
        string.Create(CultureInfo.InvariantCulture, $"{before.ToString(format, CultureInfo.InvariantCulture)} → {after.ToString(format, CultureInfo.InvariantCulture)}");
}
