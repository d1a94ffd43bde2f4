using TinyGpt;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Preference;

/// <summary>
/// The optimiser loop, nanoGPT style: AdamW, linear warm-up over the first tenth of the steps then linear decay to 0
/// (TRL's default schedule), gradients clipped to norm 1. <see cref="Step"/> takes the loss of one batch as a delegate.
/// </summary>
public sealed class TrainingLoop : IDisposable
{
    private readonly Gpt model;
    private readonly AdamW optimizer;
    private readonly double peakLearningRate;
    private readonly int steps;
    private readonly int warmup;

    /// <summary>Creates the loop for <paramref name="steps"/> steps of <paramref name="model"/>.</summary>
    public TrainingLoop(Gpt model, double peakLearningRate, int steps)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentOutOfRangeException.ThrowIfLessThan(steps, 1);
        this.model = model;
        this.peakLearningRate = peakLearningRate;
        this.steps = steps;
        warmup = Math.Max(1, steps / 10);
        optimizer = optim.AdamW(model.parameters(), peakLearningRate, beta1: 0.9, beta2: 0.99, weight_decay: 0.0);
    }

    /// <summary>Steps taken so far.</summary>
    public int StepsTaken { get; private set; }

    /// <summary>One optimiser step on the loss <paramref name="loss"/> computes for one batch; returns the loss's value.</summary>
    public double Step(Func<Tensor> loss)
    {
        ArgumentNullException.ThrowIfNull(loss);
        model.train();
        SetLearningRate(LearningRateAt(StepsTaken));
        double value;
        using (var scope = NewDisposeScope())
        {
            optimizer.zero_grad();
            var tensor = loss();
            tensor.backward();
            nn.utils.clip_grad_norm_(model.parameters(), 1.0);
            optimizer.step();
            value = tensor.item<float>();
        }
        StepsTaken++;
        return value;
    }

    /// <summary>The learning rate of step <paramref name="step"/> (0-based).</summary>
    public double LearningRateAt(int step) => step < warmup
        ? peakLearningRate * (step + 1) / warmup
        : peakLearningRate * Math.Max(0, steps - step) / Math.Max(1, steps - warmup);

    private void SetLearningRate(double rate)
    {
        foreach (var group in optimizer.ParamGroups)
            group.LearningRate = rate;
    }

    /// <summary>Disposes the optimiser's state.</summary>
    public void Dispose() => optimizer.Dispose();
}
