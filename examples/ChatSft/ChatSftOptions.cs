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

    /// <summary>
    /// The model's shape: its context is also the longest example (older turns are dropped to fit); its vocabulary is
    /// the tokenizer's, set when the model is built (0 until then).
    /// </summary>
    public GptConfig Model { get; init; } = new(VocabSize: 0, ContextLength: 128, Layers: 2, Heads: 4, Dim: 64);

    /// <summary>
    /// The trainer's settings (steps, peak learning rate, warm-up of a twentieth of the steps, log interval, and the seed
    /// of the data, the initial weights and the batch order); one validation pass, at the end.
    /// </summary>
    public TrainerOptions Trainer { get; init; } = WithSteps(new TrainerOptions { LearningRate = 3e-3, EvalInterval = 0, LogInterval = 100, Seed = 1234 }, 500);

    /// <summary>Conversations per step.</summary>
    public int Batch { get; init; } = 32;

    /// <summary>How many greedy answers per run to show in the log.</summary>
    public int SamplesToShow { get; init; } = 4;

    /// <summary>A run small enough for a test: seconds, not minutes.</summary>
    public static ChatSftOptions Quick { get; } = new()
    {
        TrainConversations = 200,
        TestConversations = 16,
        Model = new(VocabSize: 0, ContextLength: 128, Layers: 1, Heads: 2, Dim: 32),
        Trainer = WithSteps(new ChatSftOptions().Trainer with { LogInterval = 10 }, 30),
        Batch = 8,
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
                "--quick" => Quick with { Trainer = Quick.Trainer with { Seed = options.Trainer.Seed } },
                "--steps" when i + 1 < args.Count && int.TryParse(args[i + 1], out int steps) => options with { Trainer = WithSteps(options.Trainer, steps) },
                "--seed" when i + 1 < args.Count && ulong.TryParse(args[i + 1], out ulong seed) => options with { Trainer = options.Trainer with { Seed = seed } },
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
        if (Batch < 1)
            throw new ArgumentException($"Batch must be at least 1, got {Batch}.", nameof(Batch));
        if (Model.ContextLength < 2 * (SyntheticChats.MaxAnswerLength + 8))
            throw new ArgumentException($"ContextLength must be at least {2 * (SyntheticChats.MaxAnswerLength + 8)} to hold a prompt and an answer, got {Model.ContextLength}.", nameof(Model));
        // The vocabulary is the tokenizer's: any valid size stands in for it here.
        (Model with { VocabSize = 2 }).Validate();
        Trainer.Validate();
    }

    /// <summary><paramref name="trainer"/> with <paramref name="steps"/> steps and a warm-up of a twentieth of them (at least one).</summary>
    private static TrainerOptions WithSteps(TrainerOptions trainer, int steps) => trainer with { Steps = steps, WarmupSteps = Math.Max(1, steps / 20) };
}
