using System.Diagnostics;
using Microsoft.Extensions.Logging;
using TinyGpt;
using TorchLoss;
using TorchLoss.Sft;
using static TorchSharp.torch;

namespace Preference;

/// <summary>
/// The experiment: SFT a tiny GPT on questions answered right or wrong with probability ½, then, from that model and
/// with the same seed and pair order, tune it with each preference loss on pairs (chosen = correct, rejected = the other
/// end's letter), measuring held-out pairs every few steps.
/// </summary>
public sealed class PreferenceExperiment
{
    private readonly ILogger logger;

    /// <summary>Creates the experiment.</summary>
    public PreferenceExperiment(ExperimentOptions options, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(logger);
        options.Validate();
        Options = options;
        this.logger = logger;
        Tokenizer = new CharTokenizer(LetterQuestions.Alphabet + Template.SystemHeader + Template.UserHeader + Template.AssistantHeader + Template.EndOfTurn);
    }

    /// <summary>The sizes.</summary>
    public ExperimentOptions Options { get; }

    /// <summary>The chat template: "User: ... / Assistant: ..." lines.</summary>
    public ChatTemplate Template { get; } = ChatTemplate.Plain;

    /// <summary>The character-level tokenizer.</summary>
    public CharTokenizer Tokenizer { get; }

    /// <summary>SFT, then one preference run per loss of <see cref="LossSetting.All"/>.</summary>
    public IReadOnlyList<RunResult> Run()
    {
        TorchBackend.EnsureLoaded();
        var (sftQuestions, trainQuestions, heldOutQuestions) = Questions();
        var pairBuilder = new PreferencePairBuilder(Tokenizer, Template, new PreferencePairOptions { MaxLength = Options.Context });
        var trainPairs = Pairs(pairBuilder, trainQuestions);
        using var sft = Sft(sftQuestions);
        var cache = PreferenceReferenceCache.Compute(new PreferenceCollator(padTokenId: 0).Batches(trainPairs, 64), batch =>
            PreferenceReference.FromLogits(EvalForward(sft, batch.InputIds), batch.Labels, batch.CompletionMask));
        using var heldOut = new HeldOutSet(heldOutQuestions, Pairs(pairBuilder, heldOutQuestions), sft, Tokenizer, Template.EndOfTurn);
        int seen = Math.Min(256, trainPairs.Count);
        using var trained = new HeldOutSet(trainQuestions[..seen], trainPairs[..seen], sft, Tokenizer, Template.EndOfTurn);
        return LossSetting.All.Select(setting => Tune(setting, sft, trainPairs, cache, heldOut, trained)).ToList();
    }

    /// <summary>SFT questions, training-pair questions about other words, held-out questions about words in neither.</summary>
    private (List<LetterQuestion> Sft, List<LetterQuestion> Train, List<LetterQuestion> HeldOut) Questions()
    {
        var sft = LetterQuestions.Generate(Options.SftQuestions, Options.Seed);
        var seen = sft.Select(q => q.Word).ToHashSet();
        var train = LetterQuestions.Generate(Options.Pairs, Options.Seed ^ 0x5EED_0000_0000_0001UL, seen);
        seen.UnionWith(train.Select(q => q.Word));
        var heldOut = LetterQuestions.Generate(Options.HeldOut, Options.Seed ^ 0x7E57_7E57_7E57_7E57UL, seen);
        logger.LogInformation("data: {Sft} SFT questions, {Train} training pairs, {HeldOut} held-out pairs (about new words); vocabulary {Vocabulary} characters",
            sft.Count, train.Count, heldOut.Count, Tokenizer.VocabularySize);
        return (sft, train, heldOut);
    }

    private static List<PreferencePair> Pairs(PreferencePairBuilder builder, IEnumerable<LetterQuestion> questions) =>
        questions.Select(q => builder.Build([ChatMessage.User(q.Request)], chosen: q.Correct, rejected: q.Wrong)).ToList();

    /// <summary>Trains a fresh model on the SFT chats, the answer and its end-of-turn marker scored.</summary>
    private Gpt Sft(IReadOnlyList<LetterQuestion> questions)
    {
        var watch = Stopwatch.StartNew();
        var builder = new SftExampleBuilder(Tokenizer, Template, new SftOptions { MaxLength = Options.Context });
        var examples = builder.BuildMany(LetterQuestions.SftChats(questions, Options.Seed ^ 0xA45E_0000_0000_0001UL)).Examples;
        manual_seed((long)(Options.Seed & 0x7FFF_FFFF));
        var model = new Gpt(new GptConfig(Tokenizer.VocabularySize, Options.Context, Options.Layers, Options.Heads, Options.Dim));
        using var loss = new TokenCrossEntropy(new CrossEntropyOptions { Causal = true });
        using var loop = new TrainingLoop(model, Options.SftLearningRate, Options.SftSteps);
        var collator = new SftCollator(padTokenId: 0);
        var order = new SplitMix64(Options.Seed);
        for (int step = 1; step <= Options.SftSteps; step++)
        {
            var picked = Enumerable.Range(0, Options.SftBatch).Select(_ => examples[(int)order.NextInt64(examples.Count)]).ToList();
            double value = loop.Step(() =>
            {
                var batch = collator.Collate(picked);
                return loss.forward(model.forward(batch.InputIds), batch.Labels);
            });
            if (step % Math.Max(1, Options.SftSteps / 4) == 0 || step == Options.SftSteps)
                logger.LogInformation("SFT step {Step}/{Steps}: loss {Loss:F4} nats per answer token", step, Options.SftSteps, value);
        }
        logger.LogInformation("SFT: {Parameters:N0} parameters, {Seconds:F1} s", model.ParameterCount, watch.Elapsed.TotalSeconds);
        return model;
    }

    /// <summary>One preference run from a copy of the SFT model; the pair order depends only on the seed.</summary>
    private RunResult Tune(LossSetting setting, Gpt sft, IReadOnlyList<PreferencePair> pairs, PreferenceReferenceCache cache, HeldOutSet heldOut, HeldOutSet trained)
    {
        var watch = Stopwatch.StartNew();
        using var policy = Copy(sft);
        using var loss = new PreferenceLoss(setting.Options);
        using var loop = new TrainingLoop(policy, Options.LearningRate, Options.Steps);
        var collator = new PreferenceCollator(padTokenId: 0);
        var order = new SplitMix64(Options.Seed ^ 0x0DE4_0000_0000_0001UL);
        var curve = new List<Measurement> { heldOut.Measure(policy, loss, setting.NeedsReference, step: 0) };
        var trainedBefore = trained.Measure(policy, loss, setting.NeedsReference, step: 0);
        for (int step = 1; step <= Options.Steps; step++)
        {
            var indices = Enumerable.Range(0, Options.Batch).Select(_ => (int)order.NextInt64(pairs.Count)).ToArray();
            loop.Step(() =>
            {
                var batch = collator.Collate(indices.Select(i => pairs[i]).ToList());
                var reference = setting.NeedsReference ? cache.Select(indices) : null;
                return loss.Compute(policy.forward(batch.InputIds), batch.Labels, batch.CompletionMask, reference).Loss;
            });
            if (step % Options.EvalInterval == 0 || step == Options.Steps)
                curve.Add(heldOut.Measure(policy, loss, setting.NeedsReference, step));
        }
        var trainedAfter = trained.Measure(policy, loss, setting.NeedsReference, Options.Steps);
        var (before, after) = (curve[0], curve[^1]);
        logger.LogInformation(
            "{Loss}: held-out rule share {Before:P1} -> {After:P1}, reward accuracy {AccBefore:P1} -> {AccAfter:P1}, log p chosen {ChosenBefore:F3} -> {ChosenAfter:F3}, rejected {RejectedBefore:F3} -> {RejectedAfter:F3}, KL {Kl:F4}; on training pairs rule share {TrainedRule:P1}, reward accuracy {TrainedAccuracy:P1}; {Seconds:F1} s",
            setting.Name, before.FollowsRule, after.FollowsRule, before.RewardAccuracy, after.RewardAccuracy,
            before.ChosenLogProb, after.ChosenLogProb, before.RejectedLogProb, after.RejectedLogProb, after.KlFromReference,
            trainedAfter.FollowsRule, trainedAfter.RewardAccuracy, watch.Elapsed.TotalSeconds);
        return new RunResult(setting, curve, (trainedBefore, trainedAfter), watch.Elapsed.TotalSeconds);
    }

    /// <summary>A fresh model with the SFT model's weights: every run starts from the same point.</summary>
    private static Gpt Copy(Gpt source)
    {
        var copy = new Gpt(source.Config);
        using var noGrad = no_grad();
        foreach (var (to, from) in copy.parameters().Zip(source.parameters()))
            to.copy_(from);
        return copy;
    }

    private static Tensor EvalForward(Gpt model, Tensor ids)
    {
        model.eval();
        return model.forward(ids);
    }
}
