using System.Globalization;

namespace Preference;

/// <summary>Sizes of the preference experiment: one SFT run, then the same preference budget for every loss.</summary>
public sealed record ExperimentOptions
{
    /// <summary>SFT conversations (one question each, answered right or wrong with probability ½).</summary>
    public int SftQuestions { get; init; } = 20000;

    /// <summary>SFT optimiser steps.</summary>
    public int SftSteps { get; init; } = 800;

    /// <summary>SFT conversations per step.</summary>
    public int SftBatch { get; init; } = 32;

    /// <summary>SFT peak learning rate.</summary>
    public double SftLearningRate { get; init; } = 6e-3;

    /// <summary>Training preference pairs (questions not in the SFT data).</summary>
    public int Pairs { get; init; } = 4096;

    /// <summary>Preference optimiser steps per loss.</summary>
    public int Steps { get; init; } = 200;

    /// <summary>Pairs per preference step.</summary>
    public int Batch { get; init; } = 16;

    /// <summary>Preference peak learning rate (the same for every loss).</summary>
    public double LearningRate { get; init; } = 3e-3;

    /// <summary>Held-out questions, about words in neither the SFT data nor the training pairs.</summary>
    public int HeldOut { get; init; } = 256;

    /// <summary>Measure the held-out pairs every this many preference steps (for the curves).</summary>
    public int EvalInterval { get; init; } = 10;

    /// <summary>Model context in tokens.</summary>
    public int Context { get; init; } = 48;

    /// <summary>Transformer blocks.</summary>
    public int Layers { get; init; } = 2;

    /// <summary>Attention heads.</summary>
    public int Heads { get; init; } = 4;

    /// <summary>Model width.</summary>
    public int Dim { get; init; } = 64;

    /// <summary>Seed of the data, the initialisation and the batch order (the same order for every loss).</summary>
    public ulong Seed { get; init; } = 1234;

    /// <summary>torch threads; 0 keeps torch's default.</summary>
    public int Threads { get; init; }

    /// <summary>Folder for results.md, curves.csv and preference.png.</summary>
    public string Out { get; init; } = Path.Combine("runs", "preference");

    /// <summary>A run small enough for a test: seconds, not minutes.</summary>
    public static ExperimentOptions Quick { get; } = new()
    {
        SftQuestions = 400,
        SftSteps = 40,
        SftBatch = 16,
        Pairs = 64,
        Steps = 12,
        Batch = 8,
        HeldOut = 32,
        EvalInterval = 4,
        Layers = 1,
        Heads = 2,
        Dim = 32,
    };

    /// <summary>The command-line usage.</summary>
    public const string Usage =
        "Usage: dotnet run --project examples/Preference -c Release [-- --quick] [--steps N] [--pairs N] [--sft-steps N] [--lr X] [--sft-lr X] [--sft-batch N] [--seed N] [--threads N] [--out DIR]";

    /// <summary>Reads the command line: <c>--quick</c> starts from <see cref="Quick"/>, the other options override single values.</summary>
    /// <exception cref="ArgumentException">An unknown option, a missing or malformed value, or a value out of range.</exception>
    public static ExperimentOptions Parse(IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var options = args.Contains("--quick") ? Quick : new ExperimentOptions();
        for (int i = 0; i < args.Count; i++)
        {
            if (args[i] == "--quick") continue;
            if (i + 1 >= args.Count)
                throw new ArgumentException($"Option \"{args[i]}\" needs a value. {Usage}");
            string value = args[++i];
            options = args[i - 1] switch
            {
                "--steps" => options with { Steps = Integer("--steps", value) },
                "--sft-steps" => options with { SftSteps = Integer("--sft-steps", value) },
                "--lr" => options with { LearningRate = Number("--lr", value) },
                "--sft-lr" => options with { SftLearningRate = Number("--sft-lr", value) },
                "--pairs" => options with { Pairs = Integer("--pairs", value) },
                "--sft-batch" => options with { SftBatch = Integer("--sft-batch", value) },
                "--seed" => options with { Seed = (ulong)Integer("--seed", value) },
                "--threads" => options with { Threads = Integer("--threads", value) },
                "--out" => options with { Out = value },
                _ => throw new ArgumentException($"Unknown option \"{args[i - 1]}\". {Usage}"),
            };
        }
        options.Validate();
        return options;
    }

    /// <summary>The longest conversation: "User: " + request + "\n" + "Assistant: " + one letter + "\n", plus one token of room.</summary>
    public static int MinContext => 6 + LetterQuestions.RequestLength + 1 + 11 + 2 + 1;

    /// <summary>Throws an <see cref="ArgumentException"/> naming the first value out of range.</summary>
    public void Validate()
    {
        if (Steps < 1 || SftSteps < 1) throw new ArgumentException($"--steps and --sft-steps must be at least 1, got {Steps} and {SftSteps}.");
        if (Threads < 0) throw new ArgumentException($"--threads must be 0 (torch's default) or more, got {Threads}.");
        if (SftQuestions < 1 || Pairs < 1 || HeldOut < 1 || Batch < 1 || SftBatch < 1 || EvalInterval < 1)
            throw new ArgumentException("The data sizes, batch sizes and the evaluation interval must be at least 1.");
        if (Context < MinContext)
            throw new ArgumentException($"The context must hold the longest question and its answer, {MinContext} tokens, got {Context}.");
        if (Layers < 1 || Heads < 1 || Dim < 1 || Dim % Heads != 0)
            throw new ArgumentException($"The model needs layers, heads and a width divisible by the heads, got {Layers}, {Heads}, {Dim}.");
        if (!(LearningRate > 0) || !(SftLearningRate > 0))
            throw new ArgumentException($"The learning rates must be > 0, got {SftLearningRate} and {LearningRate}.");
    }

    private static double Number(string option, string value) =>
        double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out double parsed)
            ? parsed
            : throw new ArgumentException($"{option} needs a number, got \"{value}\".");

    private static int Integer(string option, string value) =>
        int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out int parsed) && parsed >= 0
            ? parsed
            : throw new ArgumentException($"{option} needs a non-negative integer, got \"{value}\".");
}
