using Microsoft.Extensions.Logging;
using TinyGpt;
using TorchLoss;
using TorchLoss.Sft;
using static TorchSharp.torch;

namespace ChatSft;

/// <summary>
/// The experiment: one synthetic chat data set, one tiny GPT, one seed and one step budget, trained twice,
/// once with the loss over every token and once over the assistant's tokens only; then both are scored on
/// the same held-out conversations.
/// </summary>
public sealed class ChatSftExperiment
{
    private readonly ILogger logger;

    /// <summary>Creates the experiment.</summary>
    public ChatSftExperiment(ChatSftOptions options, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(logger);
        options.Validate();
        Options = options;
        this.logger = logger;
        Tokenizer = new CharTokenizer(SyntheticChats.Alphabet + Template.SystemHeader + Template.UserHeader + Template.AssistantHeader + Template.EndOfTurn);
    }

    /// <summary>The sizes.</summary>
    public ChatSftOptions Options { get; }

    /// <summary>The chat template: readable "User: ... / Assistant: ..." lines.</summary>
    public ChatTemplate Template { get; } = ChatTemplate.Plain;

    /// <summary>The character-level tokenizer.</summary>
    public CharTokenizer Tokenizer { get; }

    /// <summary>Runs both trainings and scores them: full loss first, then assistant-only.</summary>
    public IReadOnlyList<RunResult> Run()
    {
        TorchBackend.EnsureLoaded();
        var train = SyntheticChats.Generate(Options.TrainConversations, Options.Trainer.Seed, Options.MaxExchanges);
        var test = SyntheticChats.Generate(Options.TestConversations, Options.Trainer.Seed ^ 0x7E57_7E57_7E57_7E57UL, Options.MaxExchanges);
        var builder = new SftExampleBuilder(Tokenizer, Template, new SftOptions { MaxLength = Options.Model.ContextLength });
        var assistantOnly = builder.BuildMany(train);
        var testExamples = builder.BuildMany(test);
        logger.LogInformation(
            "data: {Train} training conversations ({Truncated} shortened by dropping old turns, {Skipped} skipped), {Test} held-out; vocabulary {Vocabulary} characters",
            assistantOnly.Examples.Count, assistantOnly.Truncated, assistantOnly.Skipped, testExamples.Examples.Count, Tokenizer.VocabularySize);
        // The full-loss run sees the very same token ids; only the labels differ.
        var full = assistantOnly.Examples.Select(FullLoss).ToList();
        long allTokens = full.Sum(e => (long)e.TrainedTokenCount);
        logger.LogInformation("the assistant's tokens are {Share:P1} of the tokens a full loss counts", (double)assistantOnly.TrainedTokenCount / allTokens);

        return
        [
            Train(LossMode.Full, full, testExamples.Examples, test, builder),
            Train(LossMode.AssistantOnly, assistantOnly.Examples, testExamples.Examples, test, builder),
        ];
    }

    /// <summary>The same tokens with every position but the first trained: plain language modelling of the transcript.</summary>
    public static SftExample FullLoss(SftExample example) =>
        new(example.InputIds, example.InputIds.Select((id, i) => i == 0 ? SftExample.IgnoreIndex : id).ToArray());

    private RunResult Train(LossMode mode, IReadOnlyList<SftExample> examples, IReadOnlyList<SftExample> heldOut, IReadOnlyList<ChatMessage[]> heldOutChats, SftExampleBuilder builder)
    {
        logger.LogInformation("--- training with the {Mode} loss ---", mode);
        manual_seed(Options.Trainer.TorchSeed);
        using var model = new Gpt(Options.Model with { VocabSize = Tokenizer.VocabularySize });
        using var trainer = new GptTrainer(model, Options.Trainer);
        var source = new ExampleBatches(examples, Options.Batch, padTokenId: 0, Options.Trainer.Seed);
        trainer.Fit(source, () => ExampleBatches.InOrder(heldOut, 64, padTokenId: 0), new FitOptions { Logger = logger });
        var perplexity = trainer.LastEvaluation!.Perplexity;
        var answers = AnswerEvaluation.Evaluate(model, builder, heldOutChats, Options.SamplesToShow);
        foreach (var (question, expected, generated) in answers.Samples)
            logger.LogInformation("{Mode}: \"{Question}\" -> \"{Generated}\" (expected \"{Expected}\")", mode, question, Escape(generated), expected);
        return new RunResult(mode, trainer.TrainTokens, perplexity, answers, trainer.TrainingSeconds);
    }

    private static string Escape(string text) => text.Replace("\n", "\\n");
}
