using TorchLoss;

namespace TinyLM;

/// <summary>Everything the command line sets; <see cref="Program"/> documents each option in <c>--help</c>.</summary>
public sealed record TinyLmOptions
{
    /// <summary>UTF-8 text to train on; null = the embedded synthetic corpus.</summary>
    public string? Corpus { get; init; }

    /// <summary>"char" or "gpt2".</summary>
    public string Tokenizer { get; init; } = "char";

    /// <summary>Transformer blocks.</summary>
    public int Layers { get; init; } = 4;

    /// <summary>Attention heads per block.</summary>
    public int Heads { get; init; } = 4;

    /// <summary>Width of the residual stream.</summary>
    public int Dim { get; init; } = 128;

    /// <summary>Context window in tokens.</summary>
    public int Context { get; init; } = 64;

    /// <summary>Windows per micro-batch.</summary>
    public int Batch { get; init; } = 12;

    /// <summary>Micro-batches per optimiser step.</summary>
    public int Accumulation { get; init; } = 1;

    /// <summary>Optimiser steps; null = 2000 on a corpus file, <see cref="DefaultSyntheticSteps"/> on the embedded corpus.</summary>
    public int? Steps { get; init; }

    /// <summary>Default step count on the embedded corpus.</summary>
    public const int DefaultSyntheticSteps = 1200;

    /// <summary>Peak learning rate.</summary>
    public double LearningRate { get; init; } = 1e-3;

    /// <summary>Final learning rate of the cosine decay; null = a tenth of the peak.</summary>
    public double? MinLearningRate { get; init; }

    /// <summary>Warm-up steps.</summary>
    public int Warmup { get; init; } = 100;

    /// <summary>AdamW weight decay.</summary>
    public double WeightDecay { get; init; } = 0.1;

    /// <summary>Gradient-norm clip (0 = off).</summary>
    public double GradClip { get; init; } = 1.0;

    /// <summary>Dropout probability.</summary>
    public double Dropout { get; init; }

    /// <summary>Label smoothing ε.</summary>
    public double LabelSmoothing { get; init; }

    /// <summary>How smoothing mass is spread: "uniform" (PyTorch) or "other-classes".</summary>
    public string Smoothing { get; init; } = "uniform";

    /// <summary>z-loss weight.</summary>
    public double ZLoss { get; init; }

    /// <summary>Seed of weights, data order, dropout and sampling.</summary>
    public int Seed { get; init; } = 1337;

    /// <summary>Validate on the whole validation split every this many steps (0 = only at the end).</summary>
    public int EvalInterval { get; init; } = 500;

    /// <summary>Windows per validation batch.</summary>
    public int EvalBatch { get; init; } = 64;

    /// <summary>Log every this many steps.</summary>
    public int LogInterval { get; init; } = 100;

    /// <summary>Checkpoint every this many steps (0 = only when the run stops).</summary>
    public int CheckpointInterval { get; init; }

    /// <summary>Output folder.</summary>
    public string Out { get; init; } = Path.Combine("runs", "tinylm");

    /// <summary>Continue from the checkpoint in <see cref="Out"/>.</summary>
    public bool Resume { get; init; }

    /// <summary>Stop after this step, leaving a checkpoint (the schedule still spans <see cref="Steps"/>).</summary>
    public int? StopAfter { get; init; }

    /// <summary>Train a second copy with TorchSharp's built-in cross-entropy and compare.</summary>
    public bool CompareBuiltin { get; init; }

    /// <summary>Prompt for the samples; null = a default for the corpus.</summary>
    public string? Prompt { get; init; }

    /// <summary>Tokens to sample after the prompt.</summary>
    public int SampleTokens { get; init; } = 300;

    /// <summary>Sampling temperature (0 = greedy).</summary>
    public double Temperature { get; init; } = 0.8;

    /// <summary>Sample among the k most likely tokens (0 = all).</summary>
    public int TopK { get; init; } = 20;

    /// <summary>Fuse the output head with the loss (<see cref="ChunkedLinearCrossEntropy"/>): the logits are never materialised.</summary>
    public bool FusedHead { get; init; }

    /// <summary>Intra-op threads for torch (0 = torch's default, one per core).</summary>
    public int Threads { get; init; }

    /// <summary>The step count this run uses.</summary>
    public int EffectiveSteps => Steps ?? (Corpus is null ? DefaultSyntheticSteps : 2000);

    /// <summary>The loss options the flags describe.</summary>
    public CrossEntropyOptions LossOptions => new()
    {
        LabelSmoothing = LabelSmoothing,
        Smoothing = Smoothing == "other-classes" ? SmoothingKind.OtherClasses : SmoothingKind.Uniform,
        ZLossWeight = ZLoss,
    };

    /// <summary>
    /// The options that decide what a run computes, as text stored in checkpoints: a run can only be resumed with the
    /// same values (logging, output and stopping options may differ).
    /// </summary>
    public string Fingerprint() => string.Join(' ',
        $"corpus={(Corpus is null ? "(embedded)" : Path.GetFullPath(Corpus))}", $"tokenizer={Tokenizer}",
        $"layers={Layers}", $"heads={Heads}", $"dim={Dim}", $"context={Context}", $"batch={Batch}", $"accumulation={Accumulation}",
        $"steps={EffectiveSteps}", $"lr={LearningRate:R}", $"min-lr={MinLearningRate:R}", $"warmup={Warmup}", $"weight-decay={WeightDecay:R}",
        $"grad-clip={GradClip:R}", $"dropout={Dropout:R}", $"label-smoothing={LabelSmoothing:R}", $"smoothing={Smoothing}", $"z-loss={ZLoss:R}",
        $"seed={Seed}", $"eval-interval={EvalInterval}");
}
