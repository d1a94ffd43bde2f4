using Microsoft.Extensions.Logging.Abstractions;
using Preference;
using TorchLoss.Examples.Tests.TinyLM;
using TorchLoss.Sft;
using static TorchSharp.torch;

namespace TorchLoss.Examples.Tests.Preference;

[Collection(SingleThreadCollection.Name)]
public class PreferenceExampleTests
{
    [Fact]
    public void QuestionsAskForOneEndAndTheWrongAnswerIsTheOtherEnd()
    {
        var questions = LetterQuestions.Generate(400, seed: 3);
        Assert.Equal(questions, LetterQuestions.Generate(400, seed: 3));
        Assert.All(questions, q =>
        {
            Assert.Equal(LetterQuestions.WordLength, q.Word.Length);
            bool first = q.Request.StartsWith("first ", StringComparison.Ordinal);
            Assert.True(first || q.Request.StartsWith("final ", StringComparison.Ordinal), q.Request);
            Assert.EndsWith(" " + q.Word, q.Request);
            Assert.Equal(first ? q.Word[..1] : q.Word[^1..], q.Correct);
            Assert.Equal(first ? q.Word[^1..] : q.Word[..1], q.Wrong);
            Assert.NotEqual(q.Correct, q.Wrong);
        });
        Assert.InRange(questions.Count(q => q.Request.StartsWith("first", StringComparison.Ordinal)), 160, 240);

        // SFT answers are right about half the time, so SFT alone cannot learn which end a question asks for.
        var chats = LetterQuestions.SftChats(questions, seed: 4);
        int right = chats.Zip(questions).Count(p => p.First[1].Content == p.Second.Correct);
        Assert.InRange(right, 160, 240);
        Assert.All(chats.Zip(questions), p => Assert.Contains(p.First[1].Content, new[] { p.Second.Correct, p.Second.Wrong }));

        var heldOut = LetterQuestions.Generate(200, seed: 5, exclude: questions.Select(q => q.Word).ToHashSet());
        Assert.Empty(heldOut.Select(q => q.Word).Intersect(questions.Select(q => q.Word)));
    }

    [Fact]
    public void QuickRunTunesTheSameSftModelWithEveryLossAndWritesTableCsvAndChart()
    {
        using var dir = new TempDirectory();
        var options = ExperimentOptions.Parse(["--quick", "--threads", "1", "--out", dir.Path]);
        Assert.Equal(ExperimentOptions.Quick with { Threads = 1, Out = dir.Path }, options);
        int threads = get_num_threads();
        IReadOnlyList<RunResult> results;
        set_num_threads(options.Threads);
        try
        {
            results = new PreferenceExperiment(options, NullLogger.Instance).Run();
        }
        finally
        {
            set_num_threads(threads);
        }
        var written = ExperimentReport.Write(options, results, wallSeconds: 1);

        Assert.Equal(["DPO", "SimPO", "ORPO"], results.Select(r => r.Loss.Name));
        int expectedPoints = options.Steps / options.EvalInterval + 1;
        foreach (var run in results)
        {
            Assert.Equal(expectedPoints, run.Curve.Count);
            Assert.Equal(0, run.Before.Step);
            Assert.Equal(options.Steps, run.After.Step);
            Assert.All(run.Curve, m =>
            {
                foreach (double share in new[] { m.RewardAccuracy, m.PrefersChosen, m.FollowsRule, m.AnswersOtherEnd })
                    Assert.InRange(share, 0, 1);
                Assert.InRange(m.FollowsRule + m.AnswersOtherEnd, 0, 1);
                Assert.True(m.ChosenLogProb < 0 && m.RejectedLogProb < 0 && double.IsFinite(m.RewardMargin), m.ToString());
                Assert.True(m.KlFromReference >= -1e-6 && double.IsFinite(m.KlFromReference), m.ToString());
            });
            // Every run starts from the SFT model, which is the reference: no divergence yet.
            Assert.Equal(results[0].Before.ChosenLogProb, run.Before.ChosenLogProb, 1e-9);
            Assert.Equal(results[0].Before.RejectedLogProb, run.Before.RejectedLogProb, 1e-9);
            Assert.Equal(results[0].Before.FollowsRule, run.Before.FollowsRule);
            Assert.InRange(run.Before.KlFromReference, -1e-6, 1e-6);
            Assert.Equal(0, run.TrainedPairs.Before.Step);
            Assert.Equal(options.Steps, run.TrainedPairs.After.Step);
            Assert.InRange(run.TrainedPairs.After.RewardAccuracy, 0, 1);
            // Training moved the policy away from the reference.
            Assert.True(run.After.KlFromReference > 1e-6, $"{run.Loss.Name}: KL {run.After.KlFromReference}");
        }
        // DPO's rewards are β·(π − π_ref): all 0 at the start, so every pair is a tie (counted wrong).
        Assert.Equal(0, results[0].Before.RewardAccuracy);
        Assert.Equal(0, results[0].Before.RewardMargin, 1e-9);

        foreach (var text in new[] { "| DPO |", "| SimPO |", "| ORPO |", "follows the rule", "KL(π‖π_ref)", "training pairs" })
            Assert.Contains(text, written.Markdown);
        Assert.Equal(written.Markdown, File.ReadAllText(written.MarkdownPath));
        Assert.Equal(1 + 3 * expectedPoints, File.ReadAllLines(written.CsvPath).Length);
        Assert.True(new FileInfo(written.ChartPath).Length > 10_000);
    }

    [Theory]
    [InlineData("--steps", "x", "integer")]
    [InlineData("--steps", "-3", "non-negative")]
    [InlineData("--bogus", "1", "Unknown option")]
    [InlineData("--sft-steps", "0", "at least 1")]
    [InlineData("--lr", "fast", "number")]
    [InlineData("--out", null, "needs a value")]
    public void BadOptionsAreClearErrors(string option, string? value, string message)
    {
        string[] args = value is null ? [option] : [option, value];
        Assert.Contains(message, Assert.Throws<ArgumentException>(() => ExperimentOptions.Parse(args)).Message);
    }
}
