using LabelSmoothing;
using Microsoft.Extensions.Logging.Abstractions;
using TinyGpt;
using TorchLoss.Examples.Tests.TinyLM;
using static TorchSharp.torch;

namespace TorchLoss.Examples.Tests.LabelSmoothing;

[Collection(SingleThreadCollection.Name)]
public class LabelSmoothingExampleTests
{
    [Fact]
    public void QuickRunMeasuresEverySettingAndTheTrueSource()
    {
        using var dir = new TempDirectory();
        var options = LabelSmoothingOptions.Parse(["--quick", "--threads", "1", "--out", dir.Path]);
        Assert.Equal(LabelSmoothingOptions.Quick with { Threads = 1, Out = dir.Path }, options);
        int threads = get_num_threads();
        IReadOnlyList<RunResult> results;
        set_num_threads(options.Threads);
        try
        {
            results = new LabelSmoothingExperiment(options, NullLogger.Instance).Run();
        }
        finally
        {
            set_num_threads(threads);
        }
        var written = ExperimentReport.Write(options, results, wallSeconds: 1);

        // Five trained models, then the source; every model is scored on every validation character but the first.
        Assert.Equal(SmoothingSetting.All.Select(s => s.Name).Append(LabelSmoothingExperiment.SourceName), results.Select(r => r.Name));
        var models = results.Take(5).ToList();
        Assert.All(models, r =>
        {
            Assert.Equal(models[0].Calibration.Tokens, r.Calibration.Tokens);
            Assert.True(double.IsFinite(r.MeanNll) && r.MeanNll > 0 && r.Calibration.Ece is > 0 and < 1, r.ToString());
            Assert.Equal(0, r.Calibration.SkippedRows);
        });
        Assert.InRange(models[0].Calibration.Tokens, 19_990, 20_000);
        // Smoothing spreads probability: the strongest uniform ε leaves the most entropy.
        Assert.True(models[3].Calibration.MeanEntropy > models[0].Calibration.MeanEntropy, "ε = 0.2 should leave more entropy than ε = 0");

        // The true source is calibrated up to sampling noise, and no model beats its cross-entropy.
        var source = results[^1].Calibration;
        Assert.True(source.Ece < 0.01, $"the source's ECE is {source.Ece:F4}");
        Assert.True(Math.Abs(source.Overconfidence) < 0.01);
        Assert.All(models, r => Assert.True(r.MeanNll > results[^1].MeanNll));

        // The table pads the first column to its longest name (the source's), so rows are matched by their start.
        Assert.Contains("\n| ε = 0.1 other-classes ", written.Markdown);
        Assert.Contains("| true source (exact probabilities) |", File.ReadAllText(written.MarkdownPath));
        Assert.True(new FileInfo(written.ChartPath).Length > 10_000);
    }

    [Theory]
    [InlineData("--steps", "x", "integer")]
    [InlineData("--bogus", "1", "Unknown option")]
    [InlineData("--steps", "0", "at least 1")]
    [InlineData("--threads", null, "needs a value")]
    public void BadOptionsAreClearErrors(string option, string? value, string message)
    {
        string[] args = value is null ? [option] : [option, value];
        Assert.Contains(message, Assert.Throws<UsageException>(() => LabelSmoothingOptions.Parse(args)).Message);
    }
}
