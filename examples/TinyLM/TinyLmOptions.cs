using System.Globalization;
using TinyGpt;
using TorchLoss;

namespace TinyLM;

/// <summary>
/// Everything the command line sets, composed of the model's shape (<see cref="Model"/>), the trainer's settings
/// (<see cref="Trainer"/>) and what only TinyLM has (corpus, batch, outputs, sampling, distillation); each setting has one
/// name and one type. <see cref="Program"/> documents each option in <c>--help</c>.
/// </summary>
public sealed record TinyLmOptions
{
    /// <summary>UTF-8 text to train on; null = the embedded synthetic corpus.</summary>
    public string? Corpus { get; init; }

    /// <summary>"char" or "gpt2".</summary>
    public string Tokenizer { get; init; } = "char";

    /// <summary>
    /// The model's shape (<c>--layers</c>, <c>--heads</c>, <c>--dim</c>, <c>--context</c>, <c>--dropout</c>); its vocabulary
    /// is the tokenizer's, set when the corpus is read (0 until then).
    /// </summary>
    public GptConfig Model { get; init; } = new(VocabSize: 0, ContextLength: 64, Layers: 4, Heads: 4, Dim: 128, Dropout: 0);

    /// <summary>
    /// The trainer's settings: steps, learning rates and warm-up, weight decay, clipping, accumulation, the loss
    /// (<c>--label-smoothing</c>, <c>--smoothing</c>, <c>--z-loss</c>), evaluation, log and checkpoint intervals, and the
    /// seed of the corpus (embedded), weights, data order, dropout and sampling.
    /// </summary>
    public TrainerOptions Trainer { get; init; } = new() { Steps = 800, LearningRate = 2e-3, EvalInterval = 160, Seed = 1337 };

    /// <summary>Windows per micro-batch.</summary>
    public int Batch { get; init; } = 24;

    /// <summary>Defaults on the embedded corpus: tuned to get within 0.05 nats/char of its entropy rate in under two minutes on 2 cores.</summary>
    public static TinyLmOptions Embedded { get; } = new();

    /// <summary>Defaults on a corpus file: nanoGPT's CPU recipe for tiny Shakespeare (batch 12, 2000 steps, peak learning rate 3e-3).</summary>
    public static TinyLmOptions File { get; } = new()
    {
        Trainer = Embedded.Trainer with { Steps = 2000, LearningRate = 3e-3, EvalInterval = 2000 / 5 },
        Batch = 12,
    };

    /// <summary>The defaults for <paramref name="corpus"/>: <see cref="File"/>'s for a file, <see cref="Embedded"/>'s for null.</summary>
    public static TinyLmOptions For(string? corpus) => corpus is null ? Embedded : File with { Corpus = corpus };

    /// <summary>The default evaluation interval of a run of <paramref name="steps"/> steps: a fifth of them.</summary>
    public static int DefaultEvalInterval(int steps) => Math.Max(1, steps / 5);

    /// <summary><c>--smoothing</c>'s values: "uniform" (PyTorch's convention) and "other-classes".</summary>
    public static SmoothingKind ParseSmoothing(string value) => value == "other-classes" ? SmoothingKind.OtherClasses : SmoothingKind.Uniform;

    /// <summary><c>--smoothing</c>'s value for <paramref name="kind"/>.</summary>
    public static string SmoothingName(SmoothingKind kind) => kind == SmoothingKind.OtherClasses ? "other-classes" : "uniform";

    /// <summary>Windows per validation batch.</summary>
    public int EvalBatch { get; init; } = 64;

    /// <summary>Output folder.</summary>
    public string Out { get; init; } = Path.Combine("runs", "tinylm");

    /// <summary>Continue from the checkpoint in <see cref="Out"/>.</summary>
    public bool Resume { get; init; }

    /// <summary>Stop after this step, leaving a checkpoint (the schedule still spans <see cref="TrainerOptions.Steps"/>).</summary>
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

    /// <summary>Weights to start from (safetensors or a PyTorch state_dict); their shape replaces <see cref="Model"/>'s layers, heads, width and context.</summary>
    public string? InitFrom { get; init; }

    /// <summary>Folder to export the trained model to for PyTorch (<see cref="TinyGpt.GptExport"/>); null = no export.</summary>
    public string? Export { get; init; }

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
        var (model, trainer, loss) = (Model, Trainer, Trainer.Loss);
        AtLeast("--layers", model.Layers, 1);
        AtLeast("--heads", model.Heads, 1);
        AtLeast("--dim", model.Dim, 1);
        if (model.Heads >= 1 && model.Dim >= 1 && model.Dim % model.Heads != 0)
            problems.Add($"--dim ({model.Dim}) must be a multiple of --heads ({model.Heads}).");
        AtLeast("--context", model.ContextLength, 2);
        AtLeast("--batch", Batch, 1);
        AtLeast("--accumulation", trainer.AccumulationSteps, 1);
        AtLeast("--steps", trainer.Steps, 1);
        InRange("--lr", trainer.LearningRate, 0, double.PositiveInfinity, includeMinimum: false);
        if (trainer.MinLearningRate is { } min && !(min >= 0 && min <= trainer.LearningRate))
            problems.Add($"--min-lr must be in [0, --lr = {trainer.LearningRate.ToString(CultureInfo.InvariantCulture)}], got {min.ToString(CultureInfo.InvariantCulture)}.");
        AtLeast("--warmup", trainer.WarmupSteps, 0);
        InRange("--weight-decay", trainer.WeightDecay, 0, double.PositiveInfinity);
        InRange("--grad-clip", trainer.GradClip, 0, double.PositiveInfinity);
        InRange("--dropout", model.Dropout, 0, 1);
        InRange("--label-smoothing", loss.LabelSmoothing, 0, 1);
        InRange("--z-loss", loss.ZLossWeight, 0, double.PositiveInfinity);
        AtLeast("--eval-interval", trainer.EvalInterval, 0);
        AtLeast("--eval-batch", EvalBatch, 1);
        AtLeast("--log-interval", trainer.LogInterval, 1);
        AtLeast("--checkpoint-interval", trainer.CheckpointInterval, 0);
        if (StopAfter is { } stop)
            AtLeast("--stop-after", stop, 1);
        AtLeast("--sample-tokens", SampleTokens, 0);
        InRange("--temperature", Temperature, 0, double.PositiveInfinity);
        AtLeast("--top-k", TopK, 0);
        AtLeast("--threads", Threads, 0);
        if (!(DistillAlpha >= 0 && DistillAlpha <= 1))
            problems.Add($"--distill-alpha must be in [0, 1], got {DistillAlpha.ToString(CultureInfo.InvariantCulture)}.");
        InRange("--distill-temperature", DistillTemperature, 0, double.PositiveInfinity, includeMinimum: false);
        if (problems.Count == 0)
        {
            try
            {
                trainer.Validate();
            }
            catch (ArgumentException e)
            {
                problems.Add($"the options do not make a valid training run: {e.Message}");
            }
        }
        return problems;
    }

    /// <summary>
    /// The options that decide what a run computes, as text stored in checkpoints: a run can only be resumed with the
    /// same values (logging, output and stopping options may differ).
    /// </summary>
    public string Fingerprint() => string.Join(' ',
        $"corpus={(Corpus is null ? "(embedded)" : Path.GetFullPath(Corpus))}", $"tokenizer={Tokenizer}",
        $"layers={Model.Layers}", $"heads={Model.Heads}", $"dim={Model.Dim}", $"context={Model.ContextLength}", $"batch={Batch}",
        $"accumulation={Trainer.AccumulationSteps}", $"steps={Trainer.Steps}", $"lr={Trainer.LearningRate:R}", $"min-lr={Trainer.MinLearningRate:R}",
        $"warmup={Trainer.WarmupSteps}", $"weight-decay={Trainer.WeightDecay:R}", $"grad-clip={Trainer.GradClip:R}", $"dropout={Model.Dropout:R}",
        $"label-smoothing={Trainer.Loss.LabelSmoothing:R}", $"smoothing={SmoothingName(Trainer.Loss.Smoothing)}", $"z-loss={Trainer.Loss.ZLossWeight:R}",
        $"seed={Trainer.Seed}", $"eval-interval={Trainer.EvalInterval}") +
        (Distilling ? $" distill-from={DistillFrom ?? Path.GetFullPath(Teacher!)} distill-alpha={DistillAlpha:R} distill-temperature={DistillTemperature:R}" : "");
}
