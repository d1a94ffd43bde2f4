using Microsoft.Extensions.Logging;
using TorchLoss;
using static TorchSharp.torch;

namespace TinyGpt;

/// <summary>What every experiment example does around its runs: the process-wide settings, then one logged experiment.</summary>
public static class ExperimentHost
{
    /// <summary>
    /// Opts into passive OpenMP waits (before libtorch loads: sleeping waits keep the runs fast when other processes
    /// share the cores), loads libtorch, sets <paramref name="threads"/> torch threads (0 keeps torch's default), logs
    /// <paramref name="options"/>, and runs <paramref name="experiment"/> with a console logger named
    /// <paramref name="name"/>. The logger is disposed, so its output is flushed, before this returns and the caller
    /// prints its table.
    /// </summary>
    public static TResult Run<TResult>(string name, object options, int threads, Func<ILogger, TResult> experiment)
    {
        ArgumentNullException.ThrowIfNull(experiment);
        var waits = TorchBackend.UsePassiveOpenMpWaits();
        TorchBackend.EnsureLoaded();
        if (threads > 0)
            set_num_threads(threads);
        using var loggerFactory = ExampleLogging.CreateFactory();
        var logger = loggerFactory.CreateLogger(name);
        logger.LogInformation("options: {Options}; {Threads} torch threads; {Waits}", options, get_num_threads(), waits);
        return experiment(logger);
    }
}
