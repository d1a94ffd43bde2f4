using System.Text.Json;
using TorchLoss.Metrics;
using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss.Tests.Metrics;

/// <summary>The training loop of docs/perplexity.md, at toy size: a bigram model learns a cyclic sequence.</summary>
public class TrainingLoopTests
{
    private const int Vocab = 8;

    [Fact]
    public void TrackerFollowsATrainingRunAndResumesFromAJsonCheckpoint()
    {
        var logger = new RecordingLogger();
        using var model = nn.Sequential(("embed", nn.Embedding(Vocab, 16)), ("head", nn.Linear(16, Vocab)));
        using var optimizer = optim.Adam(model.parameters(), lr: 0.05);
        using var lossFn = new TokenCrossEntropy(new CrossEntropyOptions { Causal = true, LabelSmoothing = 0.1 });
        using var tracker = new PerplexityTracker(logger, windowSize: 10);
        using var ids = arange(4 * 12, ScalarType.Int64).remainder(Vocab).reshape(4, 12);   // 0 1 2 … 7 0 1 …: next token is certain

        double firstStep = double.NaN;
        for (int step = 1; step <= 60; step++)
        {
            using var scope = NewDisposeScope();
            using var result = lossFn.Compute(model.forward(ids), ids);
            optimizer.zero_grad();
            result.Loss.backward();
            optimizer.step();
            tracker.Update(result);
            if (step % 10 == 0) logger.LogPerplexity(step, tracker);
            if (step == 1) firstStep = tracker.Perplexity;
        }

        var lastWindow = tracker.WindowSnapshot();
        Assert.Equal(10, lastWindow.Updates);
        Assert.Equal(10 * 4 * 11, lastWindow.Tokens);
        Assert.True(lastWindow.Perplexity < 1.5 && lastWindow.Perplexity < firstStep / 2,
            $"perplexity went from {firstStep} at the first step to {lastWindow.Perplexity} over the last window");
        Assert.True(tracker.Perplexity > lastWindow.Perplexity);   // the cumulative value still carries the early steps
        Assert.Equal(6, logger.Entries.Count);
        Assert.Equal(60L, logger.Entries[^1].Fields["Step"]);

        var checkpoint = JsonSerializer.Deserialize<PerplexitySnapshot>(JsonSerializer.Serialize(tracker.Snapshot()))!;
        using var resumed = new PerplexityTracker();
        resumed.Restore(checkpoint);
        Assert.Equal(tracker.Perplexity, resumed.Perplexity);
        Assert.Equal(60, resumed.Updates);
    }
}
