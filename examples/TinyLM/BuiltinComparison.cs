using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;
using TinyGpt;
using static TorchSharp.torch;

namespace TinyLM;

/// <summary>
/// <c>--compare-builtin</c>: trains two copies of the model from the same initial weights on the same batches (and the
/// same dropout masks), one with TorchLoss's <c>CausalLMLoss</c> and one with TorchSharp's <c>nn.CrossEntropyLoss</c>
/// on labels shifted by hand, and reports how far their losses and final weights drift apart.
/// </summary>
public static class BuiltinComparison
{
    /// <summary>Largest per-step |Δloss| and final |Δparameter| at which the two trainings count as the same.</summary>
    public const double Tolerance = 1e-5;

    /// <summary>Runs the comparison; <paramref name="model"/> is the TorchLoss copy, already initialised.</summary>
    public static int Run(TinyLmOptions options, Gpt model, TrainerOptions trainerOptions, CorpusData data, string outDir, ILogger log, TextWriter output)
    {
        using var reference = new Gpt(model.Config);
        using (var weights = new MemoryStream())
        {
            model.save(new BinaryWriter(weights));
            weights.Position = 0;
            reference.load(new BinaryReader(weights));
        }
        using var builtinLoss = new BuiltinCrossEntropyLoss(options.LabelSmoothing);
        using var trainer = new GptTrainer(model, trainerOptions);
        using var builtin = new GptTrainer(reference, trainerOptions, builtinLoss);
        using var batches = new RandomWindowBatches(data.Train, options.EffectiveBatch, options.Context, (ulong)options.Seed);
        using var sameBatches = new RandomWindowBatches(data.Train, options.EffectiveBatch, options.Context, (ulong)options.Seed);

        var csv = new StringBuilder("step,loss_torchloss,loss_builtin,abs_delta\n");
        double maxDelta = 0, sumDelta = 0;
        int stop = Math.Min(trainerOptions.Steps, options.StopAfter ?? trainerOptions.Steps);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        for (int step = 0; step < stop; step++)
        {
            // Both copies draw the same dropout masks: replay torch's generator for the second one.
            using var rng = get_rng_state();
            var a = trainer.TrainStep(batches);
            set_rng_state(rng);
            var b = builtin.TrainStep(sameBatches);
            double delta = Math.Abs(a.Loss - b.Loss);
            maxDelta = Math.Max(maxDelta, delta);
            sumDelta += delta;
            csv.Append(CultureInfo.InvariantCulture, $"{a.Step},{a.Loss:R},{b.Loss:R},{delta:R}\n");
            if (a.Step % trainerOptions.LogInterval == 0 || a.Step == stop)
            {
                log.LogInformation("step {Step}/{Steps} | CausalLMLoss {A:F6} | nn.CrossEntropyLoss {B:F6} | |Δloss| {Delta:E2} (max so far {Max:E2})",
                    a.Step, stop, a.Loss, b.Loss, delta, maxDelta);
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
        bool agree = maxDelta <= Tolerance && maxParam <= Tolerance;
        Directory.CreateDirectory(outDir);
        AtomicFile.WriteAllText(Path.Combine(outDir, "compare.csv"), csv.ToString());
        using var validation = new ValidationText(data.Validation, options.Context, options.EvalBatch);
        var final = trainer.Evaluate(validation);
        output.WriteLine($"--compare-builtin over {stop} steps: per-step |Δloss| max {maxDelta:E3}, mean {sumDelta / Math.Max(1, stop):E3}; final max |Δparameter| {maxParam:E3}");
        output.WriteLine(agree
            ? $"CausalLMLoss and nn.CrossEntropyLoss on pre-shifted labels agree within {Tolerance:E0}."
            : $"CausalLMLoss and nn.CrossEntropyLoss DIFFER by more than {Tolerance:E0}.");
        var summary = new RunSummary
        {
            ValLoss = final.MeanNll,
            ValPerplexity = final.Perplexity,
            TrainSeconds = Math.Round(seconds, 2),
            Steps = stop,
            TokensPerSecond = Math.Round(trainer.TrainTokens / Math.Max(seconds, 1e-9), 1),
            Extra = new Dictionary<string, object?>
            {
                ["compare_builtin"] = true,
                ["max_abs_delta_loss"] = maxDelta,
                ["mean_abs_delta_loss"] = sumDelta / Math.Max(1, stop),
                ["max_abs_delta_parameter"] = maxParam,
                ["agree"] = agree,
                ["tolerance"] = Tolerance,
                ["options"] = options.Fingerprint(),
            },
        };
        string path = summary.WriteTo(outDir);
        output.WriteLine($"{path}:");
        output.WriteLine(summary.ToJson());
        return 0;
    }
}
