using TorchLoss;

namespace TinyGpt;

/// <summary>Hyper-parameters of <see cref="GptTrainer"/>; the defaults follow nanoGPT's small character models.</summary>
public sealed record TrainerOptions
{
    /// <summary>Total optimiser steps; the learning-rate schedule ends here.</summary>
    public int Steps { get; init; } = 2000;

    /// <summary>Peak learning rate, reached after <see cref="WarmupSteps"/>.</summary>
    public double LearningRate { get; init; } = 1e-3;

    /// <summary>Learning rate at the end of the cosine decay; null means <see cref="LearningRate"/> / 10.</summary>
    public double? MinLearningRate { get; init; }

    /// <summary>Steps of linear warm-up from 0 to <see cref="LearningRate"/>.</summary>
    public int WarmupSteps { get; init; } = 100;

    /// <summary>AdamW's decoupled weight decay, applied to matrices and embeddings only (not to biases and norms).</summary>
    public double WeightDecay { get; init; } = 0.1;

    /// <summary>AdamW's β1.</summary>
    public double Beta1 { get; init; } = 0.9;

    /// <summary>AdamW's β2 (0.99 as nanoGPT uses for small batches).</summary>
    public double Beta2 { get; init; } = 0.99;

    /// <summary>Clip the global gradient norm to this value; 0 turns clipping off.</summary>
    public double GradClip { get; init; } = 1.0;

    /// <summary>Micro-batches per optimiser step; the loss is normalised by their total token count.</summary>
    public int AccumulationSteps { get; init; } = 1;

    /// <summary>The loss options: label smoothing (either convention) and z-loss. The reduction is always a mean.</summary>
    public CrossEntropyOptions Loss { get; init; } = CrossEntropyOptions.Default;

    /// <summary>Evaluate on the whole validation split every this many steps (and after the last); 0 = only at the end.</summary>
    public int EvalInterval { get; init; } = 250;

    /// <summary>Log a progress line every this many steps.</summary>
    public int LogInterval { get; init; } = 100;

    /// <summary>Write a checkpoint every this many steps (and after the last) when a path is given; 0 = only at the end.</summary>
    public int CheckpointInterval { get; init; }

    /// <summary>
    /// Seed of the run: the initial weights (through <see cref="TorchSeed"/>), the data order and dropout. Equal seeds
    /// give equal runs. The trainer itself draws nothing from it; the programs that build the model and the batches do.
    /// </summary>
    public ulong Seed { get; init; } = 1337;

    /// <summary><see cref="Seed"/> as torch's <c>manual_seed</c> takes it (non-negative: the top bit is dropped).</summary>
    public long TorchSeed => (long)(Seed & long.MaxValue);

    /// <summary>Throws an <see cref="ArgumentException"/> naming the first value out of range.</summary>
    public void Validate()
    {
        if (Steps < 1)
            throw new ArgumentException($"Steps must be at least 1, got {Steps}.", nameof(Steps));
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate))
            throw new ArgumentException($"LearningRate must be a finite value > 0, got {LearningRate}.", nameof(LearningRate));
        if (MinLearningRate is { } min && (!(min >= 0) || min > LearningRate))
            throw new ArgumentException($"MinLearningRate must be in [0, LearningRate], got {min}.", nameof(MinLearningRate));
        if (WarmupSteps < 0)
            throw new ArgumentException($"WarmupSteps must be ≥ 0, got {WarmupSteps}.", nameof(WarmupSteps));
        if (!(WeightDecay >= 0))
            throw new ArgumentException($"WeightDecay must be ≥ 0, got {WeightDecay}.", nameof(WeightDecay));
        if (!(Beta1 >= 0 && Beta1 < 1) || !(Beta2 >= 0 && Beta2 < 1))
            throw new ArgumentException($"Beta1 and Beta2 must be in [0, 1), got {Beta1} and {Beta2}.", nameof(Beta1));
        if (!(GradClip >= 0))
            throw new ArgumentException($"GradClip must be ≥ 0, got {GradClip}.", nameof(GradClip));
        if (AccumulationSteps < 1)
            throw new ArgumentException($"AccumulationSteps must be at least 1, got {AccumulationSteps}.", nameof(AccumulationSteps));
        if (EvalInterval < 0 || LogInterval < 1 || CheckpointInterval < 0)
            throw new ArgumentException($"EvalInterval and CheckpointInterval must be ≥ 0 and LogInterval ≥ 1, got {EvalInterval}, {CheckpointInterval}, {LogInterval}.", nameof(EvalInterval));
        ArgumentNullException.ThrowIfNull(Loss);
        if (Loss.Reduction != TorchSharp.torch.nn.Reduction.Mean)
            throw new ArgumentException($"The trainer normalises the loss itself; Loss.Reduction must be Mean, got {Loss.Reduction}.", nameof(Loss));
    }
}
