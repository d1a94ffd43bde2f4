using System.Diagnostics;
using Microsoft.Extensions.Logging;
using TorchLoss.Metrics;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TinyGpt;

/// <summary>
/// Trains a <see cref="Gpt"/> on micro-batches from any <see cref="IBatchSource"/>: AdamW, warm-up and cosine decay,
/// gradient clipping, and gradient accumulation normalised by the step's total token count, so that
/// accumulating k micro-batches gives the gradient of one batch k times as large.
/// </summary>
public sealed class GptTrainer : IDisposable
{
    private readonly AdamW optimizer;
    private readonly TrainingHistory history = new();
    private readonly CausalLMTrainingLoss? ownedLoss;
    private readonly PerplexityTracker trainPerplexity;

    /// <summary>Creates a trainer for <paramref name="model"/>.</summary>
    /// <param name="model">The model; its parameters are updated in place.</param>
    /// <param name="options">Hyper-parameters (validated here).</param>
    /// <param name="loss">The loss; null uses <see cref="CausalLMTrainingLoss"/> with <see cref="TrainerOptions.Loss"/>.</param>
    public GptTrainer(Gpt model, TrainerOptions options, ITrainingLoss? loss = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Model = model;
        Options = options;
        if (loss is null)
        {
            ownedLoss = new CausalLMTrainingLoss(options.Loss);
            loss = ownedLoss;
        }
        Loss = loss;
        // The window is what a progress line reports: the steps since the previous line.
        trainPerplexity = new PerplexityTracker(windowSize: options.LogInterval);
        // Decay matrices and embeddings only: shrinking biases and LayerNorm gains toward 0 only hurts.
        var decay = model.parameters().Where(p => p.dim() >= 2).ToList();
        var noDecay = model.parameters().Where(p => p.dim() < 2).ToList();
        optimizer = optim.AdamW(
            [
                new AdamW.ParamGroup(decay, options.LearningRate, options.Beta1, options.Beta2, weight_decay: options.WeightDecay),
                new AdamW.ParamGroup(noDecay, options.LearningRate, options.Beta1, options.Beta2, weight_decay: 0),
            ],
            options.LearningRate, options.Beta1, options.Beta2);
    }

    /// <summary>The model being trained.</summary>
    public Gpt Model { get; }

    /// <summary>The hyper-parameters.</summary>
    public TrainerOptions Options { get; }

    /// <summary>The loss the trainer minimises.</summary>
    public ITrainingLoss Loss { get; }

    /// <summary>Optimiser steps done so far.</summary>
    public int Step { get; private set; }

    /// <summary>Wall time of the optimiser steps so far (validation passes excluded), including earlier runs this one resumed.</summary>
    public double TrainingSeconds { get; private set; }

    /// <summary>Wall time of the validation passes so far, including earlier runs this one resumed.</summary>
    public double EvaluationSeconds { get; private set; }

    /// <summary>Token-weighted training totals since step 0 (unsmoothed NLL, so perplexity is honest under label smoothing); kept in checkpoints.</summary>
    public PerplexitySnapshot TrainTotals => trainPerplexity.Snapshot();

    /// <summary>Σ unsmoothed NLL over every token trained on so far (nats).</summary>
    public double TrainNllSum => TrainTotals.NllSum;

    /// <summary>Tokens trained on so far.</summary>
    public long TrainTokens => TrainTotals.Tokens;

    /// <summary>One row per step done so far, with validation results at evaluation steps (stored in checkpoints).</summary>
    public TrainingHistory History => history;

    /// <summary>The latest validation result, if any.</summary>
    public EvaluationResult? LastEvaluation { get; private set; }

    /// <summary>Runs one optimiser step on <see cref="TrainerOptions.AccumulationSteps"/> micro-batches from <paramref name="source"/>.</summary>
    /// <exception cref="InvalidOperationException">The micro-batches hold no token to learn.</exception>
    public StepResult TrainStep(IBatchSource source)
    {
        ArgumentNullException.ThrowIfNull(source);
        var watch = Stopwatch.StartNew();
        double lr = LearningRateSchedule.At(Step, Options);
        foreach (var group in optimizer.ParamGroups)
            group.LearningRate = lr;
        Model.train();
        var batches = new List<TrainingBatch>(Options.AccumulationSteps);
        try
        {
            for (int i = 0; i < Options.AccumulationSteps; i++)
                batches.Add(source.Next());
            // The normaliser is the whole step's token count, not each micro-batch's: a micro-batch with
            // few learned tokens must not weigh as much as a full one.
            long normalizer = batches.Sum(Loss.CountTokens);
            if (normalizer == 0)
                throw new InvalidOperationException($"Step {Step + 1}: the {batches.Count} micro-batch(es) contain no token to learn (all labels ignored or masked).");
            // The step's totals stay on the device while its micro-batches run (no read-back per micro-batch); they are
            // read once, after the optimiser step, for the log and the history.
            using var stepScope = NewDisposeScope();
            var lossTotal = zeros(Array.Empty<long>(), ScalarType.Float64);
            var nllTotal = zeros(Array.Empty<long>(), ScalarType.Float64);
            foreach (var batch in batches)
            {
                using var scope = NewDisposeScope();
                var (loss, nll) = Loss.Compute(Model, batch, normalizer);
                loss.backward();
                using (no_grad())
                {
                    lossTotal.add_(loss.detach().to(ScalarType.Float64, lossTotal.device));
                    nllTotal.add_(nll.to(ScalarType.Float64, nllTotal.device));
                }
            }
            double gradNorm;
            // The optimiser's step and zero_grad wrap each parameter's gradient in a new tensor handle; the scope
            // disposes those handles (the optimiser's own state is kept outside any scope), so steps leak nothing.
            using (NewDisposeScope())
            {
                gradNorm = nn.utils.clip_grad_norm_(Model.parameters(), Options.GradClip > 0 ? Options.GradClip : double.MaxValue);
                optimizer.step();
                optimizer.zero_grad();
            }
            Step++;
            trainPerplexity.Update(nllTotal, tensor(normalizer, device: nllTotal.device));
            double[] totals = stack([lossTotal, nllTotal]).cpu().data<double>().ToArray();
            double lossSum = totals[0], nllSum = totals[1];
            TrainingSeconds += watch.Elapsed.TotalSeconds;
            history.Add(new MetricsRow(Step, lr, nllSum / normalizer, null, TrainingSeconds, EvaluationSeconds));
            return new StepResult(Step, lr, lossSum, nllSum, normalizer, gradNorm);
        }
        finally
        {
            foreach (var batch in batches)
                batch.Dispose();
        }
    }

    /// <summary>
    /// The token-weighted mean NLL of the model over <paramref name="batches"/> (each disposed after use),
    /// in eval mode (no dropout) and without gradients. Label smoothing does not enter: this is the true cross-entropy.
    /// </summary>
    public EvaluationResult Evaluate(IEnumerable<TrainingBatch> batches)
    {
        ArgumentNullException.ThrowIfNull(batches);
        var watch = Stopwatch.StartNew();
        bool wasTraining = Model.training;
        Model.eval();
        using var totals = new PerplexityTracker();
        try
        {
            using var noGrad = no_grad();
            foreach (var batch in batches)
            {
                using (batch)
                {
                    long count = Loss.CountTokens(batch);
                    if (count == 0)
                        continue;
                    using var scope = NewDisposeScope();
                    var (_, nll) = Loss.Compute(Model, batch, count);
                    totals.Update(nll.item<double>(), count);
                }
            }
        }
        finally
        {
            Model.train(wasTraining);
        }
        var snapshot = totals.Snapshot();
        if (snapshot.Tokens == 0)
            throw new InvalidOperationException("The validation batches contain no token to score.");
        return Timed(new EvaluationResult(snapshot, watch.Elapsed.TotalSeconds));
    }

    /// <summary>
    /// The model's cross-entropy and calibration on the whole of <paramref name="text"/>, scored by its
    /// <see cref="PerplexityEvaluator"/> in eval mode (no dropout) and without gradients: the true, unsmoothed
    /// cross-entropy from the model's logits whatever the training loss, and a <see cref="CalibrationTracker"/> fed
    /// from the same pass. With <see cref="FusedHeadTrainingLoss"/> and no <paramref name="onBatch"/> both come from the
    /// hidden states and the head weight in chunks (<see cref="ChunkedHeadMetrics.EvaluateHead"/>), without the logits.
    /// </summary>
    /// <exception cref="ArgumentException">The text's windows are longer than the model's context.</exception>
    public EvaluationResult Evaluate(ValidationText text, Action<EvaluationBatch>? onBatch = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Evaluator.ContextLength > Model.Config.ContextLength)
            throw new ArgumentException($"The validation windows hold {text.Evaluator.ContextLength} tokens, more than the model's context of {Model.Config.ContextLength}.", nameof(text));
        var watch = Stopwatch.StartNew();
        bool wasTraining = Model.training;
        Model.eval();
        try
        {
            using var calibration = new CalibrationTracker(text.Calibration with { Causal = true });
            // The fused head evaluates as it trains, from hidden states in chunks: no [B, T, V] logits unless a callback needs them.
            if (onBatch is null && Loss is FusedHeadTrainingLoss)
            {
                var fused = text.Evaluator.EvaluateHead(Model.Hidden, Model.HeadWeight, text.Tokens, calibration);
                return Timed(new EvaluationResult(fused, watch.Elapsed.TotalSeconds, calibration.Snapshot()));
            }
            var totals = text.Evaluator.Evaluate(Model.forward, text.Tokens, onBatch: b =>
            {
                calibration.Update(b.Logits, b.Labels, b.LossMask);
                onBatch?.Invoke(b);
            });
            return Timed(new EvaluationResult(totals, watch.Elapsed.TotalSeconds, calibration.Snapshot()));
        }
        finally
        {
            Model.train(wasTraining);
        }
    }

    private EvaluationResult Timed(EvaluationResult result)
    {
        EvaluationSeconds += result.Seconds;
        return result;
    }

    /// <summary>
    /// Trains as <see cref="Fit(IBatchSource, Func{IEnumerable{TrainingBatch}}?, FitOptions?)"/> does, evaluating on
    /// the whole of <paramref name="validation"/> with <see cref="Evaluate(ValidationText, Action{EvaluationBatch})"/>.
    /// </summary>
    /// <param name="source">Training micro-batches.</param>
    /// <param name="validation">The validation text.</param>
    /// <param name="fit">Logging, checkpointing and stopping.</param>
    public void Fit(IBatchSource source, ValidationText validation, FitOptions? fit = null)
    {
        ArgumentNullException.ThrowIfNull(validation);
        Fit(source, () => Evaluate(validation, fit?.OnValidationBatch), fit);
    }

    /// <summary>
    /// Trains from the current <see cref="Step"/> to <see cref="TrainerOptions.Steps"/> (or <see cref="FitOptions.StopAfterStep"/>),
    /// logging every <see cref="TrainerOptions.LogInterval"/> steps, evaluating on the whole of <paramref name="validation"/>
    /// every <see cref="TrainerOptions.EvalInterval"/> steps and at the end, and checkpointing as configured.
    /// </summary>
    /// <param name="source">Training micro-batches.</param>
    /// <param name="validation">Makes a fresh pass over the validation batches; null skips evaluation.</param>
    /// <param name="fit">Logging, checkpointing and stopping.</param>
    public void Fit(IBatchSource source, Func<IEnumerable<TrainingBatch>>? validation, FitOptions? fit = null) =>
        Fit(source, validation is null ? null : () => EvaluatePass(validation), fit);

    /// <summary>Evaluates a fresh validation pass; the time spent making its batches is validation time too.</summary>
    private EvaluationResult EvaluatePass(Func<IEnumerable<TrainingBatch>> validation)
    {
        var watch = Stopwatch.StartNew();
        var batches = validation();
        EvaluationSeconds += watch.Elapsed.TotalSeconds;
        return Evaluate(batches);
    }

    private void Fit(IBatchSource source, Func<EvaluationResult>? evaluate, FitOptions? fit)
    {
        ArgumentNullException.ThrowIfNull(source);
        fit ??= new FitOptions();
        int stopAt = Math.Min(Options.Steps, fit.StopAfterStep ?? Options.Steps);
        var progress = new TrainingLog(fit.Logger, Options.Steps, stopAt, Step, TrainingSeconds, TrainingSeconds + EvaluationSeconds);
        while (Step < stopAt)
        {
            var result = TrainStep(source);
            fit.OnStep?.Invoke(result);
            progress.Trained(result.Tokens);

            if (evaluate is not null && ((Options.EvalInterval > 0 && Step % Options.EvalInterval == 0) || Step == Options.Steps))
            {
                var evaluation = evaluate();
                LastEvaluation = evaluation;
                progress.Evaluated(Step, evaluation);
                fit.OnEvaluation?.Invoke(Step, evaluation);
                history.AddEvaluation(evaluation, EvaluationSeconds);
            }

            bool last = Step == stopAt;
            if (Step % Options.LogInterval == 0 || last)
                progress.Progress(Step, trainPerplexity.WindowSnapshot(), result.LearningRate, TrainingSeconds, TrainingSeconds + EvaluationSeconds);

            if (fit.CheckpointPath is { } path && (last || (Options.CheckpointInterval > 0 && Step % Options.CheckpointInterval == 0)))
            {
                Checkpoint.Save(path, this, source, fit.Metadata);
                fit.Logger?.LogDebug("step {Step}: checkpoint written to {Path}", Step, path);
            }
        }
    }

    /// <summary>Writes the optimiser's state (used by <see cref="Checkpoint"/>).</summary>
    internal void SaveOptimizer(BinaryWriter writer) => optimizer.save_state_dict(writer);

    /// <summary>Reads what <see cref="SaveOptimizer"/> wrote.</summary>
    internal void LoadOptimizer(BinaryReader reader) => optimizer.load_state_dict(reader);

    /// <summary>Puts back the counters and history a checkpoint stored (used by <see cref="Checkpoint"/>).</summary>
    internal void Restore(int step, double trainingSeconds, double evaluationSeconds, PerplexitySnapshot totals, IEnumerable<MetricsRow> rows)
    {
        Step = step;
        TrainingSeconds = trainingSeconds;
        EvaluationSeconds = evaluationSeconds;
        trainPerplexity.Restore(totals);
        history.Replace(rows);
        LastEvaluation = null;
    }

    /// <summary>Disposes the optimiser and the loss it created.</summary>
    public void Dispose()
    {
        optimizer.Dispose();
        ownedLoss?.Dispose();
        trainPerplexity.Dispose();
    }
}
