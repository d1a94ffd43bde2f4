using TorchLoss;
using TorchLoss.Metrics;
using static TorchSharp.torch;

namespace TinyGpt;

/// <summary>
/// Knowledge distillation for <see cref="GptTrainer"/>: α·CE(labels, model) + (1 − α)·τ²·KL(teacher‖model), with
/// TorchLoss's causal <see cref="TokenCrossEntropy"/> for the hard labels and <see cref="DistillationLoss"/> (also causal) for the
/// teacher's distributions at the same positions (position t predicts token t+1), both given the same token mask. The reported NLL stays the hard-label one,
/// so validation loss and perplexity mean what they always do; the distillation totals are kept separately for
/// training (<see cref="TrainingTotals"/>) and for evaluation passes (<see cref="TakeEvaluationTotals"/>).
/// </summary>
public sealed class DistillationTrainingLoss : ITrainingLoss, IDisposable
{
    private readonly TokenCrossEntropy hard;
    private readonly DistillationLoss soft;
    private readonly Func<TrainingBatch, Tensor> teacherLogits;
    private readonly double alpha;
    private DistillationTotals evaluationTotals = DistillationTotals.Zero;

    /// <summary>Creates the loss.</summary>
    /// <param name="teacherLogits">The teacher's logits [B, T, V] for a batch, aligned with the model's (no gradient needed).</param>
    /// <param name="alpha">Weight α in [0, 1] of the hard-label cross-entropy; 0 = distillation only, 1 = hard labels only (the totals are still measured).</param>
    /// <param name="distillation">Temperature and divergence; the reduction must be <c>Mean</c> (the trainer normalises).</param>
    /// <param name="hardLabels">Options of the hard-label loss (smoothing, z-loss).</param>
    public DistillationTrainingLoss(Func<TrainingBatch, Tensor> teacherLogits, double alpha, DistillationOptions? distillation = null, CrossEntropyOptions? hardLabels = null)
    {
        ArgumentNullException.ThrowIfNull(teacherLogits);
        if (double.IsNaN(alpha) || alpha < 0 || alpha > 1)
            throw new ArgumentException($"alpha must be in [0, 1], got {alpha}.", nameof(alpha));
        if (distillation?.Reduction == nn.Reduction.None)
            throw new ArgumentException("The trainer normalises the loss itself; the distillation reduction must be Mean or Sum, not None.", nameof(distillation));
        this.teacherLogits = teacherLogits;
        this.alpha = alpha;
        hard = new TokenCrossEntropy(CausalLMTrainingLoss.NextToken(hardLabels));
        soft = new DistillationLoss((distillation ?? DistillationOptions.Default) with { Causal = true });
    }

    /// <summary>The distillation totals of every training micro-batch so far.</summary>
    public DistillationTotals TrainingTotals { get; private set; } = DistillationTotals.Zero;

    /// <summary>Returns the totals of the evaluation batches since the previous call (a whole validation pass) and starts anew.</summary>
    public DistillationTotals TakeEvaluationTotals()
    {
        var totals = evaluationTotals;
        evaluationTotals = DistillationTotals.Zero;
        return totals;
    }

    /// <inheritdoc />
    public (Tensor Loss, Tensor NllSum) Compute(Gpt model, TrainingBatch batch, long normalizer)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(batch);
        using var scope = NewDisposeScope();
        var logits = model.forward(batch.Ids);
        Tensor teacher;
        using (no_grad())
            teacher = teacherLogits(batch);
        // A term of weight 0 is computed on detached logits: its totals are still wanted, its graph is not.
        var hardResult = hard.Compute(alpha == 0 ? logits.detach() : logits, batch.Labels, batch.LossMask, normalizer);
        var softResult = soft.Compute(alpha == 1 ? logits.detach() : logits, teacher, LearnedTokens(batch), normalizer);
        var loss = alpha switch
        {
            0 => softResult.Loss,
            1 => hardResult.Loss,
            _ => alpha * hardResult.Loss + (1 - alpha) * softResult.Loss,
        };
        var totals = Totals(softResult);
        if (model.training)
            TrainingTotals = TrainingTotals.Add(totals);
        else
            evaluationTotals = evaluationTotals.Add(totals);
        return (loss.MoveToOuterDisposeScope(), hardResult.NllSum.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Adds one evaluation batch to the evaluation totals, from logits the caller already has (e.g. the batch a
    /// <see cref="PerplexityEvaluator"/> scored), so a validation pass runs the model once for every metric.
    /// </summary>
    /// <param name="logits">The model's logits [B, T, V] for <paramref name="batch"/>'s ids.</param>
    /// <param name="batch">The ids, the unshifted labels and their mask (true = the token is scored; label t+1 is scored at position t).</param>
    public void Observe(Tensor logits, TrainingBatch batch)
    {
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(batch);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var result = soft.Compute(logits.detach(), teacherLogits(batch), LearnedTokens(batch));
        evaluationTotals = evaluationTotals.Add(Totals(result));
    }

    /// <summary>Adds one batch a <see cref="PerplexityEvaluator"/> scored to the evaluation totals (the evaluator keeps its tensors).</summary>
    public void Observe(EvaluationBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        // The batch's labels are its ids (unshifted); the wrapper is not disposed, so the evaluator's tensors live on.
        Observe(batch.Logits, new TrainingBatch(batch.Labels, batch.Labels, batch.LossMask));
    }

    private static DistillationTotals Totals(DistillationResult result) => new(
        result.TeacherEntropySum.item<double>(), result.CrossEntropySum.item<double>(),
        result.KlDivergenceSum.item<double>(), result.PositionCount.item<long>());

    /// <inheritdoc />
    public long CountTokens(TrainingBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        return hard.Options.CountTokens(batch.Labels, batch.LossMask);
    }

    /// <summary>
    /// The tokens the hard-label loss learns (label not ignored and, with a mask, masked in), aligned with the labels:
    /// the causal distillation loss then counts position t exactly when the hard-label loss does.
    /// </summary>
    private Tensor LearnedTokens(TrainingBatch batch)
    {
        var learned = batch.Labels.ne(hard.Options.IgnoreIndex);
        return batch.LossMask is { } mask ? learned.logical_and(mask) : learned;
    }

    /// <summary>Disposes the loss modules.</summary>
    public void Dispose()
    {
        hard.Dispose();
        soft.Dispose();
    }
}
