using TinyGpt;

namespace ChatSft;

/// <summary>Sizes of the ChatSft experiment; both runs use the same values.</summary>
public sealed record ChatSftOptions
{
    /// <summary>Training conversations.</summary>
    public int TrainConversations { get; init; } = 6000;

    /// <summary>Held-out conversations (a different seed stream) for perplexity and greedy answers.</summary>
    public int TestConversations { get; init; } = 200;

    /// <summary>Each conversation has 1 to this many user/assistant exchanges.</summary>
    public int MaxExchanges { get; init; } = 2;

    /// <summary>Optimiser steps per run.</summary>
    public int Steps { get; init; } = 500;

    /// <summary>Conversations per step.</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>Peak learning rate.</summary>
    public double LearningRate { get; init; } = 3e-3;

    /// <summary>Seed of the data, the model initialisation and the batch order.</summary>
    public ulong Seed { get; init; } = 1234;

    /// <summary>Model context (and the longest example; older turns are dropped to fit).</summary>
    public int ContextLength { get; init; } = 128;

    /// <summary>Transformer blocks.</summary>
    public int Layers { get; init; } = 2;

    /// <summary>Attention heads.</summary>
    public int Heads { get; init; } = 4;

    /// <summary>Model width.</summary>
    public int Dim { get; init; } = 64;

    /// <summary>Log a progress line every this many steps.</summary>
    public int LogInterval { get; init; } = 100;

    /// <summary>How many greedy answers per run to show in the log.</summary>
    public int SamplesToShow { get; init; } = 4;

    /// <summary>A run small enough for a test: seconds, not minutes.</summary>
    public static ChatSftOptions Quick { get; } = new()
    {
        TrainConversations = 200,
        TestConversations = 16,
        Steps = 30,
        BatchSize = 8,
        ContextLength = 128,
        Layers = 1,
        Heads = 2,
        Dim = 32,
        LogInterval = 10,
        SamplesToShow = 2,
    };

    /// <summary>The command-line usage.</summary>
    public const string Usage = "Options: --quick, --steps N, --seed N.";

    /// <summary>Reads the command line: <c>--quick</c> switches to <see cref="Quick"/> (keeping a seed given before it), <c>--steps</c> and <c>--seed</c> set single values.</summary>
    /// <exception cref="UsageException">An unknown option, or one without its value.</exception>
    public static ChatSftOptions Parse(IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var options = new ChatSftOptions();
        for (int i = 0; i < args.Count; i++)
        {
            options = args[i] switch
            {
                "--quick" => Quick with { Seed = options.Seed },
                "--steps" when i + 1 < args.Count && int.TryParse(args[i + 1], out int steps) => options with { Steps = steps },
                "--seed" when i + 1 < args.Count && ulong.TryParse(args[i + 1], out ulong seed) => options with { Seed = seed },
                _ => throw new UsageException($"Unknown or incomplete option \"{args[i]}\". {Usage}"),
            };
            if (args[i] is "--steps" or "--seed") i++;
        }
        try
        {
            options.Validate();
        }
        catch (ArgumentException e)
        {
            throw new UsageException(e.Message);
        }
        return options;
    }

    /// <summary>Throws an <see cref="ArgumentException"/> naming the first value out of range.</summary>
    public void Validate()
    {
        if (TrainConversations < 1 || TestConversations < 1)
            throw new ArgumentException($"TrainConversations and TestConversations must be at least 1, got {TrainConversations} and {TestConversations}.");
        if (MaxExchanges < 1)
            throw new ArgumentException($"MaxExchanges must be at least 1, got {MaxExchanges}.", nameof(MaxExchanges));
        if (Steps < 1 || BatchSize < 1)
            throw new ArgumentException($"Steps and BatchSize must be at least 1, got {Steps} and {BatchSize}.");
        if (ContextLength < 2 * (SyntheticChats.MaxAnswerLength + 8))
            throw new ArgumentException($"ContextLength must be at least {2 * (SyntheticChats.MaxAnswerLength + 8)} to hold a prompt and an answer, got {ContextLength}.", nameof(ContextLength));
    }
}
