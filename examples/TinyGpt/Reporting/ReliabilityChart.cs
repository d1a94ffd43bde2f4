using System.Globalization;
using ScottPlot;
using TorchLoss.Metrics;

namespace TinyGpt;

/// <summary>
/// Draws reliability diagrams: per confidence bin, a bar as high as the bin's accuracy and as wide as its share of
/// tokens (labelled with its count), a marker at the bin's mean confidence, and the diagonal a calibrated model
/// follows. Bars below the diagonal mean over-confidence, above it under-confidence. Several runs go side by side.
/// </summary>
public static class ReliabilityChart
{
    /// <summary>Writes one diagram per run to <paramref name="path"/> (PNG), in a grid of up to three columns.</summary>
    /// <param name="path">PNG file to write.</param>
    /// <param name="runs">Each run's title and its calibration totals.</param>
    /// <exception cref="ArgumentException">No runs, or a run without counted tokens.</exception>
    public static void Write(string path, IReadOnlyList<(string Title, CalibrationSnapshot Calibration)> runs)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(runs);
        if (runs.Count == 0)
            throw new ArgumentException("No runs to chart.", nameof(runs));
        if (runs.FirstOrDefault(r => r.Calibration.Tokens == 0) is { Title: { } empty })
            throw new ArgumentException($"Run '{empty}' has no counted tokens to chart.", nameof(runs));

        int columns = Math.Min(3, runs.Count);
        int rows = (runs.Count + columns - 1) / columns;
        var multiplot = new Multiplot();
        multiplot.AddPlots(runs.Count);
        multiplot.Layout = new ScottPlot.MultiplotLayouts.Grid(rows, columns);
        for (int i = 0; i < runs.Count; i++)
            Draw(multiplot.GetPlot(i), runs[i].Title, runs[i].Calibration);
        multiplot.SavePng(path, 520 * columns, 480 * rows);
    }

    private static void Draw(Plot plot, string title, CalibrationSnapshot calibration)
    {
        var diagonal = plot.Add.Line(0, 0, 1, 1);
        diagonal.LinePattern = LinePattern.Dashed;
        diagonal.Color = Colors.Gray;
        diagonal.LegendText = "calibrated";

        double binWidth = 1.0 / calibration.Bins;
        var bars = new List<Bar>();
        var confidenceX = new List<double>();
        var confidenceY = new List<double>();
        foreach (var bin in calibration.ReliabilityBins().Where(b => b.Count > 0))
        {
            double share = (double)bin.Count / calibration.Tokens;
            // Width grows with the bin's share of tokens; a floor keeps rare bins visible.
            double width = binWidth * Math.Max(0.15, Math.Sqrt(share));
            bars.Add(new Bar
            {
                Position = (bin.Lower + bin.Upper) / 2,
                Value = bin.Accuracy,
                Size = width,
                FillColor = Colors.SteelBlue.WithAlpha(0.75),
            });
            var label = plot.Add.Text(bin.Count.ToString("N0", CultureInfo.InvariantCulture), (bin.Lower + bin.Upper) / 2, bin.Accuracy + 0.02);
            label.LabelFontSize = 9;
            label.LabelAlignment = Alignment.LowerCenter;
            label.LabelRotation = -90;
            confidenceX.Add((bin.Lower + bin.Upper) / 2);
            confidenceY.Add(bin.MeanConfidence);
        }
        var barPlot = plot.Add.Bars(bars);
        barPlot.LegendText = "accuracy (width ~ tokens)";
        var confidence = plot.Add.ScatterPoints(confidenceX.ToArray(), confidenceY.ToArray());
        confidence.Color = Colors.OrangeRed;
        confidence.MarkerSize = 6;
        confidence.LegendText = "mean confidence";

        plot.Title($"{title}\nECE {calibration.Ece:F4} | accuracy {calibration.Accuracy:P1} | confidence {calibration.MeanConfidence:P1}", size: 12);
        plot.XLabel("confidence (top-1 probability)");
        plot.YLabel("accuracy");
        plot.Axes.SetLimits(0, 1, 0, 1.12);
        plot.ShowLegend(Alignment.UpperLeft);
    }
}
