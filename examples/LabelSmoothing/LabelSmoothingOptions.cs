using System.Globalization;
using TinyGpt;

namespace LabelSmoothing;

/// <summary>Sizes of the label-smoothing experiment; every run uses the same values, seed and data order.</summary>
public sealed record LabelSmoothingOptions
{
    /// <summary>A text file to train on (characters are tokens); null trains on the embedded synthetic corpus, whose true distribution is known.</summary>
    public string? Corpus { get; init; }

    /// <summary>Optimiser steps per run.</summary>
    public int Steps { get; init; } = 1200;

    /// <summary>Windows per step.</summary>
    public int Batch { get; init; } = 16;

    /// <summary>Context window in characters.</summary>
    public int Context { get; init; } = 64;

    /// <summary>Transformer blocks.</summary>
    public int Layers { get; init; } = 4;

    /// <summary>Attention heads.</summary>
    public int Heads { get; init; } = 4;

    /// <summary>Model width.</summary>
    public int Dim { get; init; } = 128;

    /// <summary>Peak learning rate.</summary>
    public double LearningRate { get; init; } = 3e-3;

    /// <summary>Warm-up steps.</summary>
    public int Warmup { get; init; } = 100;

    /// <summary>Seed of the corpus, the model initialisation and the batch order (the same for every run).</summary>
    public int Seed { get; init; } = 1337;

    /// <summary>Validation windows per model call.</summary>
    public int EvalBatch { get; init; } = 64;

    /// <summary>Log a progress line every this many steps.</summary>
    public int LogInterval { get; init; } = 200;

    /// <summary>torch threads; 0 keeps torch's default.</summary>
    public int Threads { get; init; }

    /// <summary>Folder for results.md and reliability.png.</summary>
    public string Out { get; init; } = Path.Combine("runs", "label-smoothing");

    /// <summary>A run small enough for a test: seconds, not minutes.</summary>
    public static LabelSmoothingOptions Quick { get; } = new()
    {
        Steps = 30,
        Batch = 8,
        Context = 32,
        Layers = 1,
        Heads = 2,
        Dim = 32,
        Warmup = 5,
        LogInterval = 10,
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
                "--steps" => options with { Steps = Integer("--steps", value) },
                "--batch" => options with { Batch = Integer("--batch", value) },
                "--seed" => options with { Seed = Integer("--seed", value) },
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
        if (Steps < 1) throw new UsageException($"--steps must be at least 1, got {Steps}.");
        if (Batch < 1) throw new UsageException($"--batch must be at least 1, got {Batch}.");
        if (Context < 2) throw new UsageException($"The context must be at least 2, got {Context}.");
        if (Threads < 0) throw new UsageException($"--threads must be 0 (torch's default) or more, got {Threads}.");
        if (Layers < 1 || Heads < 1 || Dim < 1 || Dim % Heads != 0)
            throw new UsageException($"The model needs layers, heads and a width divisible by the heads, got {Layers}, {Heads}, {Dim}.");
        if (EvalBatch < 1 || LogInterval < 1 || Warmup < 0)
            throw new UsageException($"EvalBatch and LogInterval must be at least 1 and Warmup at least 0, got {EvalBatch}, {LogInterval}, {Warmup}.");
    }

    private static int Integer(string option, string value) =>
        int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out int parsed)
            ? parsed
            : throw new UsageException($"{option} needs an integer, got \"{value}\".");
}
