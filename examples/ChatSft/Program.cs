using ChatSft;
using Microsoft.Extensions.Logging;
using TinyGpt;
using TorchLoss;

// Should SFT count the user's tokens, or does the model then learn "to be a user"? Train the same tiny GPT
// twice on the same synthetic chats, with the full loss and with the assistant-only loss, and compare.
// Usage: dotnet run --project examples/ChatSft -c Release [-- --quick] [--steps N] [--seed N]
return ExampleExit.Run(() => Run(ChatSftOptions.Parse(args)), Console.Error);

static int Run(ChatSftOptions options)
{
    // Before libtorch loads: sleeping OpenMP waits keep the two runs fast when other processes share the cores.
    var waits = TorchBackend.UsePassiveOpenMpWaits();
    IReadOnlyList<RunResult> runs;
    using (var loggerFactory = ExampleLogging.CreateFactory())   // disposed before the table, so the log is flushed first
    {
        var logger = loggerFactory.CreateLogger("ChatSft");
        logger.LogInformation("options: {Options}; {Waits}", options, waits);
        runs = new ChatSftExperiment(options, logger).Run();
    }
    Console.WriteLine();
    Console.WriteLine(SummaryTable.Format(runs));
    return ExampleExit.Success;
}
