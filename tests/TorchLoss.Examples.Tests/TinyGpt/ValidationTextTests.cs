using TinyGpt;
using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss.Examples.Tests.TinyGpt;

/// <summary>The trainer's text evaluation: PerplexityEvaluator windows overlapping by one token, calibration from the same pass.</summary>
public class ValidationTextTests
{
    private const int Context = 8;

    private static int[] Tokens(int count) => Enumerable.Range(0, count).Select(i => (i * 5 + i / 7) % 20).ToArray();

    [Theory]
    [InlineData(50)]   // 50 = 7·7 + 1: the last full window ends exactly at the end
    [InlineData(45)]   // a shorter last window
    [InlineData(2)]
    public void ScoresEveryTokenButTheFirstOnceAsTheWindowsOverlappingByOneDo(int length)
    {
        int[] tokens = Tokens(length);
        manual_seed(1);
        using var model = new Gpt(new GptConfig(VocabSize: 20, ContextLength: Context, Layers: 1, Heads: 2, Dim: 16));
        using var trainer = new GptTrainer(model, new TrainerOptions());
        using var text = new ValidationText(tokens, Context, batchSize: 3);

        var result = trainer.Evaluate(text);
        // The same windows built by hand and scored as plain batches: starts every Context − 1 tokens.
        var byHand = trainer.Evaluate(HandWindows(tokens));

        Assert.Equal(length - 1, result.Tokens);
        Assert.Equal(byHand.Tokens, result.Tokens);
        Assert.Equal(byHand.MeanNll, result.MeanNll, 5);
        Assert.Equal(length - 1, result.Calibration!.Tokens);
        Assert.True(model.training, "Evaluate restores the training mode");
    }

    [Fact]
    public void RepeatedEvaluationsLeaveNoLiveTensors()
    {
        manual_seed(2);
        using var model = new Gpt(new GptConfig(VocabSize: 20, ContextLength: Context, Layers: 1, Heads: 2, Dim: 16));
        using var trainer = new GptTrainer(model, new TrainerOptions());
        using var text = new ValidationText(Tokens(60), Context, batchSize: 2);
        trainer.Evaluate(text);
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (int i = 0; i < 5; i++) trainer.Evaluate(text);
        Assert.True(DisposeScopeManager.Statistics.ThreadTotalLiveCount <= before);
    }

    [Fact]
    public void WindowsLongerThanTheModelsContextAreRefused()
    {
        using var model = new Gpt(new GptConfig(VocabSize: 20, ContextLength: Context, Layers: 1, Heads: 2, Dim: 16));
        using var trainer = new GptTrainer(model, new TrainerOptions());
        using var text = new ValidationText(Tokens(60), Context * 2, batchSize: 2);
        Assert.Contains("more than the model's context", Assert.Throws<ArgumentException>(() => trainer.Evaluate(text)).Message);
        Assert.Throws<ArgumentException>(() => new ValidationText([1], Context, 1));
    }

    private static IEnumerable<TrainingBatch> HandWindows(int[] tokens)
    {
        for (int start = 0; ; start += Context - 1)
        {
            int end = Math.Min(start + Context, tokens.Length);
            var ids = tensor(tokens[start..end].Select(t => (long)t).ToArray()).unsqueeze(0);
            yield return new TrainingBatch(ids, ids);
            if (end == tokens.Length) yield break;
        }
    }
}
