using LabelSmoothing;
using TinyGpt;

// Does label smoothing keep a small language model from over-confidence? Train the same tiny GPT with
// ε ∈ {0, 0.05, 0.1, 0.2} (uniform) and ε = 0.1 (other classes), then measure calibration on the validation split.
return ExampleExit.Run(() => Run(LabelSmoothingOptions.Parse(args)), Console.Error);

static int Run(LabelSmoothingOptions options)
{
    var watch = System.Diagnostics.Stopwatch.StartNew();
    var results = ExperimentHost.Run("LabelSmoothing", options, options.Threads, logger => new LabelSmoothingExperiment(options, logger).Run());
    var written = ExperimentReport.Write(options, results, watch.Elapsed.TotalSeconds);
    Console.WriteLine();
    Console.WriteLine(written.Markdown);
    Console.WriteLine($"wrote {written.MarkdownPath} and {written.ChartPath}");
    return ExampleExit.Success;
}
