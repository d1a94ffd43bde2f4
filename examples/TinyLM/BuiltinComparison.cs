using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;
using TinyGpt;
using TorchLoss;
using static TorchSharp.torch;

namespace TinyLM;

/// <summary>
/// <c>--compare-builtin</c>: checks TorchLoss's causal <c>TokenCrossEntropy</c> against TorchSharp's <c>nn.CrossEntropyLoss</c> on labels
/// shifted by hand, in two separate ways.
/// <list type="bullet">
/// <item><b>Agreement</b> (the check): at every step both losses and their gradients are computed on the same logits,
/// those of the model being trained on that step's batches, and must agree tightly.</item>
/// <item><b>Drift</b> (a measurement, not a check): a second copy of the model is trained with the built-in loss from the
/// same weights, batches and dropout masks. Float rounding differs between the two (other summation orders), and
/// training amplifies any difference, so the two copies drift apart; the size of that drift is reported as it is.</item>
/// </list>
/// </summary>
public static class BuiltinComparison
{
    /// <summary>Largest per-step |Δloss| on the same logits at which the two losses agree.</summary>
    public const double LossTolerance = 1e-5;

    /// <summary>Largest max |Δgradient| / max |gradient| on the same logits at which the two gradients agree.</summary>
    public const double GradientTolerance = 1e-4;

    /// <summary>Runs the comparison; <paramref name="model"/> is the TorchLoss copy, already initialised.</summary>
    public static int Run(TinyLmOptions options, Gpt model, CorpusData data, string outDir, ILogger log, TextWriter output)
    {
        using var reference = new Gpt(model.Config);
        using (var weights = new MemoryStream())
        {
            model.save(new BinaryWriter(weights));
            weights.Position = 0;
            reference.load(new BinaryReader(weights));
        }
        using var builtinLoss = new BuiltinCrossEntropyLoss(options.Trainer.Loss.LabelSmoothing);
        using var causalLoss = new TokenCrossEntropy(CausalLMTrainingLoss.NextToken(options.Trainer.Loss));
        using var trainer = new GptTrainer(model, options.Trainer);
        using var builtin = new GptTrainer(reference, options.Trainer, builtinLoss);
        // Three sources with one seed draw the same batches: the trainer's, the drift copy's, and the check's.
        using var batches = new RandomWindowBatches(data.Train, options.Batch, options.Model.ContextLength, options.Trainer.Seed);
        using var sameBatches = new RandomWindowBatches(data.Train, options.Batch, options.Model.ContextLength, options.Trainer.Seed);
        using var checkBatches = new RandomWindowBatches(data.Train, options.Batch, options.Model.ContextLength, options.Trainer.Seed);

        var csv = new StringBuilder("step,loss_torchloss,loss_builtin,abs_delta_loss,max_abs_delta_grad,max_abs_grad,drift_loss_builtin_copy,drift_abs_delta_loss\n");
        double maxLossDelta = 0, maxGradDelta = 0, maxGradRelative = 0, maxDrift = 0, sumDrift = 0;
        int stop = Math.Min(options.Trainer.Steps, options.StopAfter ?? options.Trainer.Steps);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        for (int step = 0; step < stop; step++)
        {
            var check = CompareOnSameLogits(model, trainer.Loss, causalLoss, builtinLoss, checkBatches, options.Trainer.AccumulationSteps);
            maxLossDelta = Math.Max(maxLossDelta, check.LossDelta);
            maxGradDelta = Math.Max(maxGradDelta, check.GradDelta);
            maxGradRelative = Math.Max(maxGradRelative, check.GradDelta / Math.Max(check.GradMax, double.Epsilon));

            // Both copies draw the same dropout masks: replay torch's generator for the second one.
            using var rng = get_rng_state();
            var a = trainer.TrainStep(batches);
            set_rng_state(rng);
            var b = builtin.TrainStep(sameBatches);
            double drift = Math.Abs(a.Loss - b.Loss);
            maxDrift = Math.Max(maxDrift, drift);
            sumDrift += drift;
            csv.Append(CultureInfo.InvariantCulture,
                $"{a.Step},{check.LossA:R},{check.LossB:R},{check.LossDelta:R},{check.GradDelta:R},{check.GradMax:R},{b.Loss:R},{drift:R}\n");
            if (a.Step % options.Trainer.LogInterval == 0 || a.Step == stop)
            {
                log.LogInformation("step {Step}/{Steps} | same logits: TokenCrossEntropy (causal) {A:F6} | nn.CrossEntropyLoss {B:F6} | |Δloss| {Delta:E2} | max |Δgrad| {Grad:E2} | drift of the separately trained copy {Drift:E2}",
                    a.Step, stop, check.LossA, check.LossB, check.LossDelta, check.GradDelta, drift);
            }
        }
        double seconds = watch.Elapsed.TotalSeconds;
        double maxParam = 0;
        using (no_grad())
        {
            foreach (var (p, q) in model.parameters().Zip(reference.parameters()))
            {
                using var diff = (p - q).abs().max();
                maxParam = Math.Max(maxParam, diff.item<float>());
            }
        }
        bool agree = maxLossDelta <= LossTolerance && maxGradRelative <= GradientTolerance;
        Directory.CreateDirectory(outDir);
        AtomicFile.WriteAllText(Path.Combine(outDir, "compare.csv"), csv.ToString());
        using var validation = new ValidationText(data.Validation, options.Model.ContextLength, options.EvalBatch);
        var final = trainer.Evaluate(validation);
        var finalBuiltin = builtin.Evaluate(validation);
        double meanDrift = sumDrift / Math.Max(1, stop);

        output.WriteLine($"--compare-builtin over {stop} steps, both losses on the same logits at every step:");
        output.WriteLine($"  loss: max |Δ| {maxLossDelta:E2} (tolerance {LossTolerance:E0}); gradient: max |Δ| {maxGradDelta:E2}, {maxGradRelative:E2} of the largest gradient (tolerance {GradientTolerance:E0})");
        output.WriteLine(agree
            ? "TokenCrossEntropy (causal) and nn.CrossEntropyLoss on pre-shifted labels agree on every step's loss and gradient."
            : "TokenCrossEntropy (causal) and nn.CrossEntropyLoss DIFFER on the same logits.");
        output.WriteLine("drift of a second copy trained with nn.CrossEntropyLoss (not a check: training amplifies float rounding differences):");
        output.WriteLine($"  per-step |Δloss| max {maxDrift:E2}, mean {meanDrift:E2}; final max |Δparameter| {maxParam:E2}; validation loss {final.MeanNll:F4} vs {finalBuiltin.MeanNll:F4}");
        var summary = new RunSummary
        {
            ValLoss = final.MeanNll,
            ValPerplexity = final.Perplexity,
            TrainSeconds = Math.Round(seconds, 2),
            EvalSeconds = Math.Round(final.Seconds + finalBuiltin.Seconds, 2),
            Steps = stop,
            TokensPerSecond = Math.Round(trainer.TrainTokens / Math.Max(seconds, 1e-9), 1),
            Extra = new Dictionary<string, object?>
            {
                ["compare_builtin"] = true,
                ["max_abs_delta_loss"] = maxLossDelta,
                ["max_abs_delta_grad"] = maxGradDelta,
                ["max_rel_delta_grad"] = maxGradRelative,
                ["loss_tolerance"] = LossTolerance,
                ["gradient_tolerance"] = GradientTolerance,
                ["agree"] = agree,
                ["drift_max_abs_delta_loss"] = maxDrift,
                ["drift_mean_abs_delta_loss"] = meanDrift,
                ["drift_max_abs_delta_parameter"] = maxParam,
                ["drift_val_loss_builtin_copy"] = finalBuiltin.MeanNll,
                ["options"] = options.Fingerprint(),
            },
        };
        string path = summary.WriteTo(outDir);
        output.WriteLine($"{path}:");
        output.WriteLine(summary.ToJson());
        return 0;
    }

    private sealed record Check(double LossA, double LossB, double LossDelta, double GradDelta, double GradMax);

    /// <summary>
    /// Both losses, and their gradients with respect to the logits, on the logits the model gives for this step's
    /// micro-batches (without dropout, which would make the two calls see different logits).
    /// </summary>
    private static Check CompareOnSameLogits(Gpt model, ITrainingLoss counter, TokenCrossEntropy causal, BuiltinCrossEntropyLoss builtin, IBatchSource source, int microBatches)
    {
        var step = Enumerable.Range(0, microBatches).Select(_ => source.Next()).ToList();
        bool training = model.training;
        try
        {
            model.eval();
            long normalizer = step.Sum(counter.CountTokens);
            double lossA = 0, lossB = 0, gradDelta = 0, gradMax = 0;
            foreach (var batch in step)
            {
                using var scope = NewDisposeScope();
                Tensor logits;
                using (no_grad())
                    logits = model.forward(batch.Ids);
                var leafA = logits.clone().requires_grad_(true);
                var leafB = logits.clone().requires_grad_(true);
                using var a = causal.Compute(leafA, batch.Labels, batch.LossMask, normalizer);
                a.Loss.backward();
                var (b, _) = builtin.Compute(leafB, batch, normalizer);
                b.backward();
                lossA += a.Loss.item<float>();
                lossB += b.item<float>();
                gradDelta = Math.Max(gradDelta, (leafA.grad! - leafB.grad!).abs().max().item<float>());
                gradMax = Math.Max(gradMax, leafB.grad!.abs().max().item<float>());
            }
            return new Check(lossA, lossB, Math.Abs(lossA - lossB), gradDelta, gradMax);
        }
        finally
        {
            model.train(training);
            foreach (var batch in step)
                batch.Dispose();
        }
    }
}
