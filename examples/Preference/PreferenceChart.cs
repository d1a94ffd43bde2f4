using ScottPlot;

namespace Preference;

/// <summary>
/// The curves of every run on the held-out pairs, one line per loss: reward margin, reward accuracy, the chosen (solid)
/// and rejected (dashed) answers' Σ log p, and the share of greedy answers that follow the rule.
/// </summary>
public static class PreferenceChart
{
    private static readonly Color[] Palette = [Colors.SteelBlue, Colors.OrangeRed, Colors.SeaGreen, Colors.Purple];

    /// <summary>Writes the 2×2 chart to <paramref name="path"/> (PNG).</summary>
    /// <exception cref="ArgumentException">No runs.</exception>
    public static void Write(string path, IReadOnlyList<RunResult> results)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(results);
        if (results.Count == 0)
            throw new ArgumentException("No runs to chart.", nameof(results));
        var multiplot = new Multiplot();
        multiplot.AddPlots(4);
        multiplot.Layout = new ScottPlot.MultiplotLayouts.Grid(2, 2);
        Panel(multiplot.GetPlot(0), results, "reward margin (each loss's own rewards)", [("", m => m.RewardMargin, LinePattern.Solid)]);
        Panel(multiplot.GetPlot(1), results, "reward accuracy", [("", m => m.RewardAccuracy, LinePattern.Solid)]);
        Panel(multiplot.GetPlot(2), results, "Σ log p: chosen (solid), rejected (dashed)",
            [(" chosen", m => m.ChosenLogProb, LinePattern.Solid), (" rejected", m => m.RejectedLogProb, LinePattern.Dashed)]);
        Panel(multiplot.GetPlot(3), results, "greedy answers that follow the rule", [("", m => m.FollowsRule, LinePattern.Solid)]);
        multiplot.SavePng(path, 1200, 900);
    }

    private static void Panel(Plot plot, IReadOnlyList<RunResult> results, string title, (string Suffix, Func<Measurement, double> Value, LinePattern Pattern)[] series)
    {
        for (int i = 0; i < results.Count; i++)
        {
            var steps = results[i].Curve.Select(m => (double)m.Step).ToArray();
            foreach (var (suffix, value, pattern) in series)
            {
                var line = plot.Add.Scatter(steps, results[i].Curve.Select(value).ToArray());
                line.LegendText = results[i].Loss.Name + suffix;
                line.Color = Palette[i % Palette.Length];
                line.LinePattern = pattern;
                line.LineWidth = 2;
                line.MarkerSize = 4;
            }
        }
        plot.Title(title, size: 13);
        plot.XLabel("preference step (held-out pairs)");
        plot.ShowLegend(Alignment.LowerRight);
    }
}
