using TinyGpt;
using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss.Examples.Tests.TinyGpt;

/// <summary>500 training steps of a tiny GPT, with the plain and the fused head, leave no live tensors behind.</summary>
public class TrainingLeakTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void FiveHundredStepsLeaveTheLiveTensorCountUnchanged(bool fusedHead)
    {
        var tokens = Enumerable.Range(0, 5000).Select(i => (i * 7 + i / 13) % 40).ToArray();
        manual_seed(3);
        using var model = new Gpt(new GptConfig(VocabSize: 40, ContextLength: 12, Layers: 1, Heads: 2, Dim: 16));
        var options = new TrainerOptions { Steps = 501, WarmupSteps = 10, Loss = new CrossEntropyOptions { LabelSmoothing = 0.1 } };
        using var fused = fusedHead ? new FusedHeadTrainingLoss(options.Loss) : null;
        using var trainer = new GptTrainer(model, options, fused);
        using var batches = new RandomWindowBatches(tokens, batchSize: 4, context: 12, seed: 5);

        // The first step allocates the optimiser's state, which is meant to live on.
        var first = trainer.TrainStep(batches);
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        StepResult last = first;
        for (int i = 0; i < 500; i++) last = trainer.TrainStep(batches);
        long after = DisposeScopeManager.Statistics.ThreadTotalLiveCount;

        Assert.True(after <= before, $"live tensors grew from {before} to {after} over 500 steps (fused head: {fusedHead})");
        Assert.True(last.NllSum / last.Tokens < first.NllSum / first.Tokens, "the loss should fall over 500 steps");
    }
}
