using Microsoft.Extensions.Logging;
using Preference;
using TinyGpt;
using TorchLoss;
using static TorchSharp.torch;

// Does preference tuning teach what SFT did not? SFT a tiny GPT on "first/final letter of W" answered right or wrong
// with probability ½, then tune it with DPO, SimPO and ORPO on pairs (chosen = right) and measure held-out questions.
ExperimentOptions options;
try
{
    options = ExperimentOptions.Parse(args);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}

// Before libtorch loads: sleeping OpenMP waits keep the runs fast when other processes share the cores.
var waits = TorchBackend.UsePassiveOpenMpWaits();
TorchBackend.EnsureLoaded();
if (options.Threads > 0)
    set_num_threads(options.Threads);
var watch = System.Diagnostics.Stopwatch.StartNew();
IReadOnlyList<RunResult> results;
using (var loggerFactory = ExampleLogging.CreateFactory())   // disposed before the table, so the log is flushed first
{
    var logger = loggerFactory.CreateLogger("Preference");
    logger.LogInformation("options: {Options}; {Threads} torch threads; {Waits}", options, get_num_threads(), waits);
    results = new PreferenceExperiment(options, logger).Run();
}
var written = ExperimentReport.Write(options, results, watch.Elapsed.TotalSeconds);
Console.WriteLine();
Console.WriteLine(written.Markdown);
Console.WriteLine($"wrote {written.MarkdownPath}, {written.CsvPath} and {written.ChartPath}");
return 0;
