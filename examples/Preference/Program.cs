using Preference;
using TinyGpt;

// Does preference tuning teach what SFT did not? SFT a tiny GPT on "first/final letter of W" answered right or wrong
// with probability ½, then tune it with DPO, SimPO and ORPO on pairs (chosen = right) and measure held-out questions.
return ExampleExit.Run(() => Run(ExperimentOptions.Parse(args)), Console.Error);

static int Run(ExperimentOptions options)
{
    var watch = System.Diagnostics.Stopwatch.StartNew();
    var results = ExperimentHost.Run("Preference", options, options.Threads, logger => new PreferenceExperiment(options, logger).Run());
    var written = ExperimentReport.Write(options, results, watch.Elapsed.TotalSeconds);
    Console.WriteLine();
    Console.WriteLine(written.Markdown);
    Console.WriteLine($"wrote {written.MarkdownPath}, {written.CsvPath} and {written.ChartPath}");
    return ExampleExit.Success;
}
