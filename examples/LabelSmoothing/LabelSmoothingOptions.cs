using System.Globalization;
using TinyGpt;

namespace LabelSmoothing;

/// <summary>Sizes of the label-smoothing experiment; every run uses the same values, seed and data order.</summary>
public sealed record LabelSmoothingOptions
{
    /// <summary>A text file to train on (characters are tokens); null trains on the embedded synthetic corpus, whose true distribution is known.</summary>
    public string? Corpus { get; init; }

    /// <summary>The model's shape; its vocabulary is the corpus's, set when the corpus is read (0 until then).</summary>
    public GptConfig Model { get; init; } = new(VocabSize: 0, ContextLength: 64, Layers: 4, Heads: 4, Dim: 128);

    /// <summary>
    /// The trainer's settings (steps, peak learning rate, warm-up, log interval, seed of the corpus, the initial weights
    /// and the batch order); each run sets its own loss, and validates once, at the end.
    /// </summary>
    public TrainerOptions Trainer { get; init; } = new() { Steps = 1200, LearningRate = 3e-3, WarmupSteps = 100, EvalInterval = 0, LogInterval = 200, Seed = 1337 };

    /// <summary>Windows per step.</summary>
    public int Batch { get; init; } = 16;

    /// <summary>Validation windows per model call.</summary>
    public int EvalBatch { get; init; } = 64;

    /// <summary>torch threads; 0 keeps torch's default.</summary>
    public int Threads { get; init; }

    /// <summary>Folder for results.md and reliability.png.</summary>
    public string Out { get; init; } = Path.Combine("runs", "label-smoothing");

    /// <summary>A run small enough for a test: seconds, not minutes.</summary>
    public static LabelSmoothingOptions Quick { get; } = new()
    {
        Model = new(VocabSize: 0, ContextLength: 32, Layers: 1, Heads: 2, Dim: 32),
        Trainer = new LabelSmoothingOptions().Trainer with { Steps = 30, WarmupSteps = 5, LogInterval = 10 },
        Batch = 8,
    };

    /// <summary>The command-line usage.</summary>
    public const string Usage =
        "Usage: dotnet run --project examples/LabelSmoothing -c Release [-- --quick] [--corpus FILE] [--steps N] [--batch N] [--seed N] [--threads N] [--out DIR]";

    /// <summary>Reads the command line: <c>--quick</c> starts from <see cref="Quick"/>, the other options override single values.</summary>
    /// <exception cref="UsageException">An unknown option, a missing or malformed value, or a value out of range.</exception>
    public static LabelSmoothingOptions Parse(IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var options = args.Contains("--quick") ? Quick : new LabelSmoothingOptions();
        for (int i = 0; i < args.Count; i++)
        {
            if (args[i] == "--quick") continue;
            if (i + 1 >= args.Count)
                throw new UsageException($"Option \"{args[i]}\" needs a value. {Usage}");
            string value = args[++i];
            options = args[i - 1] switch
            {
                "--corpus" => options with { Corpus = value },
                "--steps" => options with { Trainer = options.Trainer with { Steps = Integer("--steps", value) } },
                "--batch" => options with { Batch = Integer("--batch", value) },
                "--seed" => options with { Trainer = options.Trainer with { Seed = Seed(value) } },
                "--threads" => options with { Threads = Integer("--threads", value) },
                "--out" => options with { Out = value },
                _ => throw new UsageException($"Unknown option \"{args[i - 1]}\". {Usage}"),
            };
        }
        options.Validate();
        return options;
    }

    /// <summary>Throws a <see cref="UsageException"/> naming the first value out of range.</summary>
    public void Validate()
    {
        if (Trainer.Steps < 1) throw new UsageException($"--steps must be at least 1, got {Trainer.Steps}.");
        if (Batch < 1) throw new UsageException($"--batch must be at least 1, got {Batch}.");
        if (Threads < 0) throw new UsageException($"--threads must be 0 (torch's default) or more, got {Threads}.");
        if (EvalBatch < 1) throw new UsageException($"EvalBatch must be at least 1, got {EvalBatch}.");
        try
        {
            // The vocabulary is the corpus's: any valid size stands in for it here.
            (Model with { VocabSize = 2 }).Validate();
            Trainer.Validate();
        }
        catch (ArgumentException e)
        {
            throw new UsageException(e.Message);
        }
    }

    private static ulong Seed(string value) =>
        ulong.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out ulong parsed)
            ? parsed
            : throw new UsageException($"--seed needs a non-negative integer, got \"{value}\".");

    private static int Integer(string option, string value) =>
        int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out int parsed)
            ? parsed
            : throw new UsageException($"{option} needs an integer, got \"{value}\".");
}
