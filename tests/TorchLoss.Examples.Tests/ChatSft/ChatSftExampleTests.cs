using System.Text.RegularExpressions;
using ChatSft;
using Microsoft.Extensions.Logging.Abstractions;
using TinyGpt;
using TorchLoss.Sft;
using TorchSharp;

namespace TorchLoss.Examples.Tests.ChatSft;

public class ChatSftExampleTests
{
    [Fact]
    public void SyntheticChatsAreDeterministicAndEveryAnswerIsTheOneCorrectAnswer()
    {
        var chats = SyntheticChats.Generate(300, seed: 5, maxExchanges: 3);
        Assert.Equal(
            chats.SelectMany(c => c).Select(m => m.Content),
            SyntheticChats.Generate(300, seed: 5, maxExchanges: 3).SelectMany(c => c).Select(m => m.Content));
        Assert.NotEqual(chats[0], SyntheticChats.Generate(1, seed: 6, maxExchanges: 3)[0]);
        int checkedAnswers = 0;
        foreach (var chat in chats)
        {
            Assert.InRange(chat.Length, 2, 6);
            for (int i = 0; i < chat.Length; i += 2)
            {
                Assert.Equal(ChatRole.User, chat[i].Role);
                Assert.Equal(ChatRole.Assistant, chat[i + 1].Role);
                Assert.InRange(chat[i + 1].Content.Length, 1, SyntheticChats.MaxAnswerLength);
                Assert.Equal(Solve(chat[i].Content), chat[i + 1].Content);
                checkedAnswers++;
            }
        }
        Assert.True(checkedAnswers > 300);
    }

    /// <summary>Solves a request independently of the generator, by reading the user's text.</summary>
    private static string Solve(string request)
    {
        Match m;
        string[] words = ["hot", "cold", "up", "down", "big", "small", "fast", "slow", "old", "new", "day", "night", "yes", "no", "left", "right", "wet", "dry"];
        if ((m = Regex.Match(request, @"opposite of (\w+)")).Success)
        {
            int at = Array.IndexOf(words, m.Groups[1].Value);
            return words[at % 2 == 0 ? at + 1 : at - 1];
        }
        if ((m = Regex.Match(request, @"(?:add (\d) and (\d)|what is (\d) plus (\d)\?|(\d)\+(\d)=\?)")).Success)
            return m.Groups.Cast<Group>().Skip(1).Where(g => g.Success).Sum(g => int.Parse(g.Value)).ToString();
        if ((m = Regex.Match(request, @"(?:letter after|what comes after|which letter follows) ([a-z])\b")).Success)
            return ((char)(m.Groups[1].Value[0] + 1)).ToString();
        if ((m = Regex.Match(request, @"(?:first letter of (\w+)|what does (\w+) start with\?|initial of (\w+))")).Success)
            return m.Groups.Cast<Group>().Skip(1).First(g => g.Success).Value[..1];
        throw new InvalidOperationException($"No task in \"{request}\".");
    }

    [Fact]
    public void FullLossLabelsEveryTokenAndAssistantOnlyLabelsOnlyTheAnswers()
    {
        var experiment = new ChatSftExperiment(ChatSftOptions.Quick, NullLogger.Instance);
        var chat = SyntheticChats.Generate(1, seed: 9, maxExchanges: 2)[0];
        var builder = new SftExampleBuilder(experiment.Tokenizer, experiment.Template, new SftOptions { MaxLength = 128 });
        var assistantOnly = builder.Build(chat);
        var full = ChatSftExperiment.FullLoss(assistantOnly);
        Assert.Equal(assistantOnly.InputIds, full.InputIds);
        Assert.Equal(full.Length - 1, full.TrainedTokenCount);
        var answers = chat.Where(m => m.Role == ChatRole.Assistant).Select(m => m.Content + "\n");
        Assert.Equal(answers, assistantOnly.TrainedRuns().Select(r => experiment.Tokenizer.Decode(assistantOnly.InputIds[r])));
    }

    [Fact]
    public void EvaluationPromptsAreTheIdsTrainingPutBeforeEachAnswer()
    {
        var experiment = new ChatSftExperiment(ChatSftOptions.Quick, NullLogger.Instance);
        var builder = new SftExampleBuilder(experiment.Tokenizer, experiment.Template, new SftOptions { MaxLength = 128 });
        foreach (var chat in SyntheticChats.Generate(50, seed: 11, maxExchanges: 2))
        {
            var (ids, expected, question) = AnswerEvaluation.Prompt(builder, chat, maxTokens: 128);
            Assert.Equal((chat[^1].Content, chat[^2].Content), (expected, question));
            var example = builder.Build(chat);
            Assert.Equal(ids, example.InputIds[..ids.Length]);
            Assert.Equal(ids.Length, example.TrainedRuns()[^1].Start.Value);
            Assert.Equal(expected + experiment.Template.EndOfTurn, experiment.Tokenizer.Decode(example.InputIds[example.TrainedRuns()[^1]]));
        }
    }

    [Fact]
    public void RaggedGreedyDecodingEqualsDecodingEachPromptAlone()
    {
        torch.manual_seed(4);
        using var model = new Gpt(new GptConfig(VocabSize: 20, ContextLength: 24, Layers: 1, Heads: 2, Dim: 16));
        int[][] prompts = [[1, 2, 3], [4, 5, 6, 7, 8, 9], [10]];
        var together = GreedyDecoding.Continue(model, prompts, newTokens: 6);
        for (int i = 0; i < prompts.Length; i++)
        {
            using var ids = torch.tensor(prompts[i].Select(x => (long)x).ToArray(), [1, prompts[i].Length]);
            using var alone = model.Generate(ids, 6, temperature: 0);
            Assert.Equal(alone[0, prompts[i].Length..].data<long>().Select(x => (int)x), together[i]);
        }
    }

    [Fact]
    public void QuickRunTrainsBothModelsOnTheSameDataAndReportsEveryMetric()
    {
        var runs = new ChatSftExperiment(ChatSftOptions.Quick, NullLogger.Instance).Run();
        Assert.Equal([LossMode.Full, LossMode.AssistantOnly], runs.Select(r => r.Mode));
        var (full, assistant) = (runs[0], runs[1]);
        // Same conversations, same steps: the full loss counts every token, the assistant-only loss a small share.
        Assert.True(full.TrainedTokens > 3 * assistant.TrainedTokens, $"{full.TrainedTokens} vs {assistant.TrainedTokens}");
        foreach (var run in runs)
        {
            Assert.True(double.IsFinite(run.AssistantPerplexity) && run.AssistantPerplexity > 1, $"{run.Mode}: perplexity {run.AssistantPerplexity}");
            Assert.Equal(ChatSftOptions.Quick.TestConversations, run.Answers.Prompts);
            Assert.InRange(run.Answers.ExactMatches, 0, run.Answers.Stops);
            Assert.InRange(run.Answers.UserTurns, 0, run.Answers.Prompts);
        }
        var table = SummaryTable.Format(runs);
        foreach (var row in new[] { "assistant-token perplexity", "exact-match accuracy", "stops at the end-of-turn", "\"User:\" turn", "full loss", "assistant-only" })
            Assert.Contains(row, table);
    }
}

/// <summary>ChatSft's command line: a bad option is a <see cref="UsageException"/>, which the program turns into exit code 2.</summary>
public class ChatSftOptionsTests
{
    [Theory]
    [InlineData("--stpes", "10")]
    [InlineData("--steps", "ten")]
    [InlineData("--steps", "0")]
    public void Bad_options_are_usage_errors(string option, string value)
    {
        Assert.Throws<UsageException>(() => ChatSftOptions.Parse([option, value]));
        var error = new StringWriter();
        Assert.Equal(ExampleExit.UsageError, ExampleExit.Run(() => ChatSftOptions.Parse([option, value]).Trainer.Steps, error));
        Assert.StartsWith("error: ", error.ToString());
    }

    [Fact]
    public void Quick_keeps_a_seed_given_before_it()
    {
        var options = ChatSftOptions.Parse(["--seed", "7", "--quick", "--steps", "12"]);
        Assert.Equal(7UL, options.Trainer.Seed);
        Assert.Equal(12, options.Trainer.Steps);
        Assert.Equal(ChatSftOptions.Quick.TrainConversations, options.TrainConversations);
    }
}
