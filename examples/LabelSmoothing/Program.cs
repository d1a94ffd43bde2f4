using LabelSmoothing;
using Microsoft.Extensions.Logging;
using TinyGpt;
using TorchLoss;
using static TorchSharp.torch;

// Does label smoothing keep a small language model from over-confidence? Train the same tiny GPT with
// ε ∈ {0, 0.05, 0.1, 0.2} (uniform) and ε = 0.1 (other classes), then measure calibration on the validation split.
return ExampleExit.Run(() => Run(LabelSmoothingOptions.Parse(args)), Console.Error);

static int Run(LabelSmoothingOptions options)
{
    // Before libtorch loads: sleeping OpenMP waits keep the five runs fast when other processes share the cores.
    var waits = TorchBackend.UsePassiveOpenMpWaits();
    TorchBackend.EnsureLoaded();
    if (options.Threads > 0)
        set_num_threads(options.Threads);
    var watch = System.Diagnostics.Stopwatch.StartNew();
    IReadOnlyList<RunResult> results;
    using (var loggerFactory = ExampleLogging.CreateFactory())   // disposed before the table, so the log is flushed first
    {
        var logger = loggerFactory.CreateLogger("LabelSmoothing");
        logger.LogInformation("options: {Options}; {Threads} torch threads; {Waits}", options, get_num_threads(), waits);
        results = new LabelSmoothingExperiment(options, logger).Run();
    }
    var written = ExperimentReport.Write(options, results, watch.Elapsed.TotalSeconds);
    Console.WriteLine();
    Console.WriteLine(written.Markdown);
    Console.WriteLine($"wrote {written.MarkdownPath} and {written.ChartPath}");
    return ExampleExit.Success;
}
