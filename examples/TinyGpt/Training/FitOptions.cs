using Microsoft.Extensions.Logging;
using TorchLoss.Metrics;

namespace TinyGpt;

/// <summary>How <c>GptTrainer.Fit</c> reports, checkpoints and stops (the hyper-parameters are in <see cref="TrainerOptions"/>).</summary>
public sealed record FitOptions
{
    /// <summary>Where progress lines go; null logs nothing.</summary>
    public ILogger? Logger { get; init; }

    /// <summary>Checkpoint file, written atomically every <see cref="TrainerOptions.CheckpointInterval"/> steps and when the run stops; null writes none.</summary>
    public string? CheckpointPath { get; init; }

    /// <summary>Stop after this step (leaving a checkpoint to resume from) although the schedule runs to <see cref="TrainerOptions.Steps"/>.</summary>
    public int? StopAfterStep { get; init; }

    /// <summary>Free text stored in the checkpoint (e.g. the command-line options as JSON).</summary>
    public string Metadata { get; init; } = "";

    /// <summary>Called after every step.</summary>
    public Action<StepResult>? OnStep { get; init; }

    /// <summary>Called after every validation pass with the step it followed.</summary>
    public Action<int, EvaluationResult>? OnEvaluation { get; init; }

    /// <summary>
    /// Called with every batch of a validation pass over a <see cref="ValidationText"/> (its logits, ids and scored
    /// positions), so other metrics can use the same model pass; the tensors are valid only during the call.
    /// </summary>
    public Action<EvaluationBatch>? OnValidationBatch { get; init; }
}
