using ScottPlot;

namespace TinyGpt;

/// <summary>Draws a run's loss and perplexity curves (train per step, validation per evaluation) into one PNG.</summary>
public static class LossChart
{
    /// <summary>Writes the chart of <paramref name="rows"/> to <paramref name="path"/>.</summary>
    /// <param name="path">PNG file to write.</param>
    /// <param name="rows">The run's metrics.</param>
    /// <param name="title">Title above the charts.</param>
    /// <param name="floor">Optional lower bound to draw on the loss chart (e.g. the source's entropy rate), with its label.</param>
    public static void Write(string path, IReadOnlyList<MetricsRow> rows, string title, (double Value, string Label)? floor = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(rows);
        if (rows.Count == 0)
            throw new ArgumentException("No metrics to chart.", nameof(rows));
        var steps = rows.Select(r => (double)r.Step).ToArray();
        var evals = rows.Where(r => r.ValLoss.HasValue).ToArray();
        var evalSteps = evals.Select(r => (double)r.Step).ToArray();

        var multiplot = new Multiplot();
        multiplot.AddPlots(2);
        var loss = multiplot.GetPlot(0);
        var ppl = multiplot.GetPlot(1);

        loss.Title(title);
        AddCurves(loss, steps, rows.Select(r => r.TrainLoss).ToArray(), evalSteps, evals.Select(r => r.ValLoss!.Value).ToArray());
        if (floor is { } f)
        {
            var line = loss.Add.HorizontalLine(f.Value);
            line.LegendText = f.Label;
            line.LinePattern = LinePattern.Dashed;
            line.Color = Colors.Black;
        }
        loss.YLabel("loss (nats/token)");
        loss.ShowLegend(Alignment.UpperRight);

        AddCurves(ppl, steps, rows.Select(r => r.TrainPerplexity).ToArray(), evalSteps, evals.Select(r => r.ValPerplexity!.Value).ToArray());
        if (floor is { } g)
        {
            var line = ppl.Add.HorizontalLine(Math.Exp(g.Value));
            line.LegendText = "exp(" + g.Label + ")";
            line.LinePattern = LinePattern.Dashed;
            line.Color = Colors.Black;
        }
        ppl.YLabel("perplexity");
        ppl.XLabel("step");
        ppl.ShowLegend(Alignment.UpperRight);

        multiplot.SavePng(path, 1000, 900);
    }

    private static void AddCurves(Plot plot, double[] steps, double[] train, double[] evalSteps, double[] val)
    {
        var trainLine = plot.Add.ScatterLine(steps, train);
        trainLine.LegendText = "train (per step)";
        trainLine.Color = Colors.SteelBlue.WithAlpha(0.6);
        if (val.Length > 0)
        {
            var valLine = plot.Add.Scatter(evalSteps, val);
            valLine.LegendText = "validation (whole split)";
            valLine.Color = Colors.OrangeRed;
            valLine.LineWidth = 2;
            valLine.MarkerSize = 7;
        }
        // Early steps dwarf the interesting end of the curve; start the y axis near the final values.
        double top = Math.Max(train.Skip(train.Length / 20).DefaultIfEmpty(train[0]).Max(), val.DefaultIfEmpty(0).Max());
        double bottom = Math.Min(train.Min(), val.DefaultIfEmpty(double.MaxValue).Min());
        plot.Axes.SetLimitsY(bottom - 0.05 * (top - bottom), top + 0.05 * (top - bottom));
    }
}
