using ChatSft;
using TinyGpt;

// Should SFT count the user's tokens, or does the model then learn "to be a user"? Train the same tiny GPT
// twice on the same synthetic chats, with the full loss and with the assistant-only loss, and compare.
// Usage: dotnet run --project examples/ChatSft -c Release [-- --quick] [--steps N] [--seed N]
return ExampleExit.Run(() => Run(ChatSftOptions.Parse(args)), Console.Error);

static int Run(ChatSftOptions options)
{
    var runs = ExperimentHost.Run("ChatSft", options, threads: 0, logger => new ChatSftExperiment(options, logger).Run());
    Console.WriteLine();
    Console.WriteLine(SummaryTable.Format(runs));
    return ExampleExit.Success;
}
