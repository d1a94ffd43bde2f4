using System.Globalization;
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

    /// <summary>Windows per micro-batch; null = 12 on a corpus file (nanoGPT's CPU recipe), <see cref="Embedded"/>'s on the embedded corpus.</summary>
    public int? Batch { get; init; }

    /// <summary>Micro-batches per optimiser step.</summary>
    public int Accumulation { get; init; } = 1;

    /// <summary>Optimiser steps; null = 2000 on a corpus file, <see cref="Embedded"/>'s on the embedded corpus.</summary>
    public int? Steps { get; init; }

    /// <summary>Peak learning rate; null = <see cref="File"/>'s or <see cref="Embedded"/>'s.</summary>
    public double? LearningRate { get; init; }

    /// <summary>Defaults on the embedded corpus: tuned to get within 0.05 nats/char of its entropy rate in under two minutes on 2 cores.</summary>
    public static (int Steps, int Batch, double LearningRate) Embedded => (800, 24, 2e-3);

    /// <summary>Defaults on a corpus file: nanoGPT's CPU recipe for tiny Shakespeare (batch 12, 2000 steps).</summary>
    public static (int Steps, int Batch, double LearningRate) File => (2000, 12, 3e-3);

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

    /// <summary>Validate on the whole validation split every this many steps (0 = only at the end); null = a fifth of the steps.</summary>
    public int? EvalInterval { get; init; }

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

    /// <summary>"source": distil from the embedded corpus's exact next-character distributions; null = no distillation from the source.</summary>
    public string? DistillFrom { get; init; }

    /// <summary>Output folder of a trained TinyLM run whose checkpoint is the distillation teacher; null = none.</summary>
    public string? Teacher { get; init; }

    /// <summary>Weight α of the hard-label cross-entropy when distilling: α·CE + (1 − α)·τ²·KL (0 = soft targets only).</summary>
    public double DistillAlpha { get; init; }

    /// <summary>Distillation temperature τ, applied to teacher and student logits (not the sampling temperature).</summary>
    public double DistillTemperature { get; init; } = 1.0;

    /// <summary>Whether the run distils (from the source or a teacher).</summary>
    public bool Distilling => DistillFrom is not null || Teacher is not null;

    /// <summary>Intra-op threads for torch (0 = torch's default, one per core).</summary>
    public int Threads { get; init; }

    /// <summary>Weights to start from (safetensors or a PyTorch state_dict); their shape replaces <see cref="Layers"/>, <see cref="Heads"/>, <see cref="Dim"/> and <see cref="Context"/>.</summary>
    public string? InitFrom { get; init; }

    /// <summary>Folder to export the trained model to for PyTorch (<see cref="TinyGpt.GptExport"/>); null = no export.</summary>
    public string? Export { get; init; }

    private (int Steps, int Batch, double LearningRate) Preset => Corpus is null ? Embedded : File;

    /// <summary>The step count this run uses.</summary>
    public int EffectiveSteps => Steps ?? Preset.Steps;

    /// <summary>The batch size this run uses.</summary>
    public int EffectiveBatch => Batch ?? Preset.Batch;

    /// <summary>The peak learning rate this run uses.</summary>
    public double EffectiveLearningRate => LearningRate ?? Preset.LearningRate;

    /// <summary>The evaluation interval this run uses.</summary>
    public int EffectiveEvalInterval => EvalInterval ?? Math.Max(1, EffectiveSteps / 5);

    /// <summary>The loss options the flags describe.</summary>
    public CrossEntropyOptions LossOptions => new()
    {
        LabelSmoothing = LabelSmoothing,
        Smoothing = Smoothing == "other-classes" ? SmoothingKind.OtherClasses : SmoothingKind.Uniform,
        ZLossWeight = ZLoss,
    };

    /// <summary>Every out-of-range value, each named by its command-line option; empty when all are valid.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        void AtLeast(string name, long value, long minimum)
        {
            if (value < minimum)
                problems.Add($"{name} must be at least {minimum}, got {value}.");
        }
        void InRange(string name, double value, double minimum, double maximum, bool includeMinimum = true)
        {
            bool ok = (includeMinimum ? value >= minimum : value > minimum) && value < maximum;
            if (!ok)
                problems.Add($"{name} must be in {(includeMinimum ? "[" : "(")}{minimum.ToString(CultureInfo.InvariantCulture)}, {(double.IsPositiveInfinity(maximum) ? "∞" : maximum.ToString(CultureInfo.InvariantCulture))}), got {value.ToString(CultureInfo.InvariantCulture)}.");
        }
        AtLeast("--layers", Layers, 1);
        AtLeast("--heads", Heads, 1);
        AtLeast("--dim", Dim, 1);
        if (Heads >= 1 && Dim >= 1 && Dim % Heads != 0)
            problems.Add($"--dim ({Dim}) must be a multiple of --heads ({Heads}).");
        AtLeast("--context", Context, 2);
        AtLeast("--batch", EffectiveBatch, 1);
        AtLeast("--accumulation", Accumulation, 1);
        if (Steps is { } steps)
            AtLeast("--steps", steps, 1);
        InRange("--lr", EffectiveLearningRate, 0, double.PositiveInfinity, includeMinimum: false);
        if (MinLearningRate is { } min && !(min >= 0 && min <= EffectiveLearningRate))
            problems.Add($"--min-lr must be in [0, --lr = {EffectiveLearningRate.ToString(CultureInfo.InvariantCulture)}], got {min.ToString(CultureInfo.InvariantCulture)}.");
        AtLeast("--warmup", Warmup, 0);
        InRange("--weight-decay", WeightDecay, 0, double.PositiveInfinity);
        InRange("--grad-clip", GradClip, 0, double.PositiveInfinity);
        InRange("--dropout", Dropout, 0, 1);
        InRange("--label-smoothing", LabelSmoothing, 0, 1);
        InRange("--z-loss", ZLoss, 0, double.PositiveInfinity);
        AtLeast("--eval-interval", EffectiveEvalInterval, 0);
        AtLeast("--eval-batch", EvalBatch, 1);
        AtLeast("--log-interval", LogInterval, 1);
        AtLeast("--checkpoint-interval", CheckpointInterval, 0);
        if (StopAfter is { } stop)
            AtLeast("--stop-after", stop, 1);
        AtLeast("--sample-tokens", SampleTokens, 0);
        InRange("--temperature", Temperature, 0, double.PositiveInfinity);
        AtLeast("--top-k", TopK, 0);
        AtLeast("--threads", Threads, 0);
        if (!(DistillAlpha >= 0 && DistillAlpha <= 1))
            problems.Add($"--distill-alpha must be in [0, 1], got {DistillAlpha.ToString(CultureInfo.InvariantCulture)}.");
        InRange("--distill-temperature", DistillTemperature, 0, double.PositiveInfinity, includeMinimum: false);
        return problems;
    }

    /// <summary>
    /// The options that decide what a run computes, as text stored in checkpoints: a run can only be resumed with the
    /// same values (logging, output and stopping options may differ).
    /// </summary>
    public string Fingerprint() => string.Join(' ',
        $"corpus={(Corpus is null ? "(embedded)" : Path.GetFullPath(Corpus))}", $"tokenizer={Tokenizer}",
        $"layers={Layers}", $"heads={Heads}", $"dim={Dim}", $"context={Context}", $"batch={EffectiveBatch}", $"accumulation={Accumulation}",
        $"steps={EffectiveSteps}", $"lr={EffectiveLearningRate:R}", $"min-lr={MinLearningRate:R}", $"warmup={Warmup}", $"weight-decay={WeightDecay:R}",
        $"grad-clip={GradClip:R}", $"dropout={Dropout:R}", $"label-smoothing={LabelSmoothing:R}", $"smoothing={Smoothing}", $"z-loss={ZLoss:R}",
        $"seed={Seed}", $"eval-interval={EffectiveEvalInterval}") +
        (Distilling ? $" distill-from={DistillFrom ?? Path.GetFullPath(Teacher!)} distill-alpha={DistillAlpha:R} distill-temperature={DistillTemperature:R}" : "");
}
