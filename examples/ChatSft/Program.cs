using ChatSft;
using Microsoft.Extensions.Logging;
using TinyGpt;
using TorchLoss;

// Should SFT count the user's tokens, or does the model then learn "to be a user"? Train the same tiny GPT
// twice on the same synthetic chats, with the full loss and with the assistant-only loss, and compare.
// Usage: dotnet run --project examples/ChatSft -c Release [-- --quick] [--steps N] [--seed N]
var options = new ChatSftOptions();
for (int i = 0; i < args.Length; i++)
{
    options = args[i] switch
    {
        "--quick" => ChatSftOptions.Quick with { Seed = options.Seed },
        "--steps" when i + 1 < args.Length && int.TryParse(args[i + 1], out int steps) => options with { Steps = steps },
        "--seed" when i + 1 < args.Length && ulong.TryParse(args[i + 1], out ulong seed) => options with { Seed = seed },
        _ => throw new ArgumentException($"Unknown or incomplete option \"{args[i]}\". Options: --quick, --steps N, --seed N."),
    };
    if (args[i] is "--steps" or "--seed") i++;
}

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
