using System.Globalization;
using Microsoft.Extensions.Logging;
using TinyGpt;
using TorchLoss;
using TorchLoss.Sft;
using TorchSharp;
using static TorchSharp.torch;

namespace TinyLM;

/// <summary>One TinyLM run: load the corpus, train (or resume), evaluate on the whole validation split, sample, and write the outputs.</summary>
public static class TinyLmApp
{
    /// <summary>Name of the checkpoint file in the output folder.</summary>
    public const string CheckpointFile = "checkpoint.bin";

    /// <summary>Runs TinyLM and returns the process exit code (0 = success).</summary>
    public static int Run(TinyLmOptions options, ILoggerFactory loggers, TextWriter output, TextWriter error)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loggers);
        var log = loggers.CreateLogger("TinyLM");
        try
        {
            TorchBackend.EnsureLoaded();
            if (options.Threads > 0)
                set_num_threads(options.Threads);
            using var init = OpenInitialWeights(options);
            if (init is not null)
                options = options with { Layers = init.Config.Layers, Heads = init.Config.Heads, Dim = init.Config.Dim, Context = init.Config.BlockSize };
            var data = CorpusData.Load(options.Corpus, options.Tokenizer, options.Context, (ulong)options.Seed);
            string outDir = Path.GetFullPath(options.Out);
            string checkpoint = Path.Combine(outDir, CheckpointFile);
            if (options.Resume && !File.Exists(checkpoint))
                throw new CorpusException($"--resume: there is no checkpoint at '{checkpoint}'.");
            if (options.CompareBuiltin && (options.ZLoss > 0 || options.Smoothing == "other-classes"))
                throw new CorpusException("--compare-builtin compares against nn.CrossEntropyLoss, which has neither z-loss nor other-classes smoothing; drop --z-loss / --smoothing other-classes.");
            if (options.CompareBuiltin && options.FusedHead)
                throw new CorpusException("--compare-builtin compares the plain head's logits with nn.CrossEntropyLoss; drop --fused-head.");
            if (options.CompareBuiltin && options.Resume)
                throw new CorpusException("--compare-builtin always trains both copies from scratch; it cannot be combined with --resume.");
            if (options.CompareBuiltin && options.Export is not null)
                throw new CorpusException("--compare-builtin trains two copies; --export exports the model of an ordinary run. Drop one of them.");

            var config = new GptConfig(data.VocabularySize, options.Context, options.Layers, options.Heads, options.Dim, options.Dropout);
            var trainerOptions = new TrainerOptions
            {
                Steps = options.EffectiveSteps,
                LearningRate = options.EffectiveLearningRate,
                MinLearningRate = options.MinLearningRate,
                WarmupSteps = Math.Min(options.Warmup, options.EffectiveSteps),
                WeightDecay = options.WeightDecay,
                GradClip = options.GradClip,
                AccumulationSteps = options.Accumulation,
                Loss = options.LossOptions,
                EvalInterval = options.EffectiveEvalInterval,
                LogInterval = options.LogInterval,
                CheckpointInterval = options.CheckpointInterval,
            };
            try
            {
                trainerOptions.Validate();
            }
            catch (ArgumentException e)
            {
                throw new CorpusException($"the options do not make a valid training run: {e.Message}");
            }

            log.LogInformation("corpus: {Corpus}; tokenizer: {Tokenizer}; {Train:N0} training and {Val:N0} validation tokens",
                data.Description, data.TokenizerName, data.Train.Length, data.Validation.Length);
            if (data.Source is { } source)
            {
                log.LogInformation("source entropy rate H = {H:F4} nats/char: no model can do better; perplexity floor exp(H) = {Floor:F4}",
                    source.EntropyRate, Math.Exp(source.EntropyRate));
                log.LogInformation("on windows of {Context} characters that start without history the floor is {Windowed:F4} nats/char (the first {K} predictions of each window see fewer than {Order} characters)",
                    options.Context, source.WindowedFloor(options.Context), source.Order - 1, source.Order);
            }

            using var distillation = DistillationRun.Create(options, data, log);
            manual_seed(options.Seed);
            using var model = new Gpt(config);
            if (init is not null)
            {
                CheckVocabulary(init, data);
                try
                {
                    GptWeights.Load(model, init.State);
                }
                catch (InvalidDataException e)
                {
                    throw new CorpusException($"--init-from: {e.Message}");
                }
                log.LogInformation("initialised from {Path}; shape from {Source}", init.Path, init.ConfigSource);
            }
            log.LogInformation("model: {Layers} layers, {Heads} heads, {Dim} dims, context {Context}, vocabulary {Vocab}: {Params:N0} parameters; {Threads} torch threads, OpenMP wait policy {WaitPolicy}",
                config.Layers, config.Heads, config.Dim, config.ContextLength, config.VocabSize, model.ParameterCount, get_num_threads(), TorchBackend.OpenMpWaitPolicy ?? "default");

            if (options.CompareBuiltin)
                return BuiltinComparison.Run(options, model, trainerOptions, data, outDir, log, output);

            using var fusedLoss = options.FusedHead ? new FusedHeadTrainingLoss(options.LossOptions) : null;
            using var trainer = new GptTrainer(model, trainerOptions, (ITrainingLoss?)fusedLoss ?? distillation?.Loss);
            using var batches = new RandomWindowBatches(data.Train, options.EffectiveBatch, options.Context, (ulong)options.Seed);
            string fingerprint = options.Fingerprint();
            if (options.Resume)
            {
                try
                {
                    var (stored, storedFingerprint) = Checkpoint.ReadHeader(checkpoint);
                    if (storedFingerprint != fingerprint)
                        throw new CorpusException($"--resume: the checkpoint was written with different options.\n  checkpoint: {storedFingerprint}\n  now:        {fingerprint}");
                    Checkpoint.Load(checkpoint, trainer, batches);
                }
                catch (InvalidDataException e)
                {
                    throw new CorpusException($"--resume: {e.Message}");
                }
                log.LogInformation("resumed from {Path} at step {Step}/{Steps}", checkpoint, trainer.Step, trainerOptions.Steps);
            }
            Directory.CreateDirectory(outDir);

            using var validation = new ValidationText(data.Validation, options.Context, options.EvalBatch);
            trainer.Fit(batches, validation, new FitOptions
            {
                Logger = log,
                CheckpointPath = checkpoint,
                StopAfterStep = options.StopAfter,
                Metadata = fingerprint,
                OnEvaluation = distillation is null ? null : (step, _) => distillation.OnEvaluation(step, log),
                OnValidationBatch = distillation is null ? null : distillation.Observe,
            });

            var final = trainer.Step == trainerOptions.Steps && trainer.LastEvaluation is { } last
                ? last
                : trainer.Evaluate(validation, distillation is null ? null : distillation.Observe);
            if (trainer.LastEvaluation != final)
                distillation?.OnEvaluation(trainer.Step, log);
            if (trainer.Step < trainerOptions.Steps)
                log.LogInformation("stopped after step {Step} of {Steps}; continue with the same options and --resume", trainer.Step, trainerOptions.Steps);

            string samples = Sample(model, data, options);
            File.WriteAllText(Path.Combine(outDir, "samples.txt"), samples);
            output.WriteLine();
            output.WriteLine($"--- sample (temperature {options.Temperature.ToString(CultureInfo.InvariantCulture)}, top-k {options.TopK}) ---");
            output.WriteLine(samples);
            output.WriteLine("---");

            MetricsCsv.Write(Path.Combine(outDir, "metrics.csv"), trainer.History, distillation?.Columns());
            var floor = data.Source is { } s ? (s.EntropyRate, "entropy rate H") : ((double, string)?)null;
            if (trainer.History.Count > 0)
                LossChart.Write(Path.Combine(outDir, "loss.png"), trainer.History, $"TinyLM on {Describe(options)}", floor);
            if (final.Calibration is { } calibration)
            {
                ReliabilityChart.Write(Path.Combine(outDir, "reliability.png"), [($"TinyLM on {Describe(options)}, validation", calibration)]);
                output.WriteLine($"validation accuracy {calibration.Accuracy:P2} at mean confidence {calibration.MeanConfidence:P2}: ECE {calibration.Ece:F4} over {calibration.Bins} bins");
            }

            var summary = Summarize(trainer, final, data, options, model);
            distillation?.Summarize(summary.Extra, options);
            if (data.Source is { } src)
            {
                double windowed = src.WindowedFloor(options.Context);
                output.WriteLine($"validation cross-entropy {final.MeanNll:F4} nats/char = entropy rate H {src.EntropyRate:F4} + gap {final.MeanNll - src.EntropyRate:F4}");
                output.WriteLine($"  of the gap, {windowed - src.EntropyRate:F4} is the cost of windows starting without history (unavoidable here), and");
                output.WriteLine($"  {final.MeanNll - windowed:F4} is the KL divergence of the model from the source (plus sampling noise of a {final.Tokens:N0}-token split)");
                output.WriteLine($"perplexity {final.Perplexity:F4} vs floor exp(H) = {Math.Exp(src.EntropyRate):F4}");
            }
            string path = summary.WriteTo(outDir);
            output.WriteLine($"{path}:");
            output.WriteLine(summary.ToJson());
            if (options.Export is { } export)
            {
                GptExport.Write(model, export, data.Tokenizer is CharTokenizer chars ? CharVocabulary.From(chars) : null);
                output.WriteLine($"exported for PyTorch: {Path.GetFullPath(export)}");
            }
            return 0;
        }
        // Only what the user can fix (the corpus, a checkpoint, an option combination) is a one-line error; anything
        // else is a bug and must surface with its stack trace, not pass for bad data.
        catch (CorpusException e)
        {
            error.WriteLine($"error: {e.Message}");
            return 2;
        }
    }

    /// <summary>The weights --init-from names, or null without it.</summary>
    private static ImportedWeights? OpenInitialWeights(TinyLmOptions options)
    {
        if (options.InitFrom is not { } path)
            return null;
        if (!File.Exists(path))
            throw new CorpusException($"--init-from: there is no file '{path}'.");
        ImportedWeights init;
        try
        {
            init = ImportedWeights.Open(path, options.Heads);
        }
        catch (Exception e) when (e is InvalidDataException or IOException)
        {
            throw new CorpusException($"--init-from: '{path}' cannot be read as model weights: {e.Message}");
        }
        try
        {
            init.Config.ToGptConfig();
            return init;
        }
        catch (ArgumentException e)
        {
            init.Dispose();
            throw new CorpusException($"--init-from: the shape of '{path}' is not a valid model: {e.Message}");
        }
    }

    /// <summary>Refuses weights whose token ids mean something else than the corpus's.</summary>
    private static void CheckVocabulary(ImportedWeights init, CorpusData data)
    {
        if (init.Config.VocabSize != data.VocabularySize)
            throw new CorpusException($"--init-from: the weights have a vocabulary of {init.Config.VocabSize} tokens, but the corpus's tokenizer has {data.VocabularySize}.");
        if (init.Vocabulary is { } stored && data.Tokenizer is CharTokenizer chars)
        {
            var corpus = CharVocabulary.From(chars);
            if (stored.FirstDifference(corpus) is { } id)
                throw new CorpusException($"--init-from: the {CharVocabulary.FileName} beside the weights is not the corpus's vocabulary: id {id} is {stored.Describe(id)} there and {corpus.Describe(id)} in the corpus.");
        }
    }

    /// <summary>The run's summary.json contents.</summary>
    private static RunSummary Summarize(GptTrainer trainer, EvaluationResult final, CorpusData data, TinyLmOptions options, Gpt model)
    {
        var extra = new Dictionary<string, object?>
        {
            ["corpus"] = data.Description,
            ["tokenizer"] = data.TokenizerName,
            ["parameters"] = model.ParameterCount,
            ["val_tokens"] = final.Tokens,
            ["val_bits_per_token"] = final.MeanNll / Math.Log(2),
            ["val_accuracy"] = final.Calibration?.Accuracy,
            ["val_ece"] = final.Calibration?.Ece,
            ["val_confidence"] = final.Calibration?.MeanConfidence,
            ["final_eval_seconds"] = Math.Round(final.Seconds, 3),
            ["train_loss_mean_all_steps"] = trainer.TrainNllSum / trainer.TrainTokens,
            ["options"] = options.Fingerprint(),
            ["fused_head"] = options.FusedHead,
            ["peak_resident_mib"] = PeakResidentMiB(),
        };
        if (data.Source is { } source)
        {
            extra["entropy_rate"] = source.EntropyRate;
            extra["perplexity_floor"] = Math.Exp(source.EntropyRate);
            extra["windowed_floor"] = source.WindowedFloor(options.Context);
            extra["gap_to_entropy_rate"] = final.MeanNll - source.EntropyRate;
            extra["kl_estimate"] = final.MeanNll - source.WindowedFloor(options.Context);
        }
        return new RunSummary
        {
            ValLoss = final.MeanNll,
            ValPerplexity = final.Perplexity,
            TrainSeconds = Math.Round(trainer.TrainingSeconds, 2),
            Steps = trainer.Step,
            TokensPerSecond = Math.Round(trainer.TrainTokens / Math.Max(trainer.TrainingSeconds, 1e-9), 1),
            Extra = extra,
        };
    }

    /// <summary>The process's peak resident set (VmHWM, native tensors included) in MiB; null where /proc is missing.</summary>
    private static double? PeakResidentMiB()
    {
        const string status = "/proc/self/status";
        if (!File.Exists(status)) return null;
        var line = File.ReadLines(status).FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
        return line is null ? null : Math.Round(double.Parse(line[6..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) / 1024, 1);
    }

    private static string Sample(Gpt model, CorpusData data, TinyLmOptions options)
    {
        string prompt = options.Prompt ?? data.DefaultPrompt;
        int[] promptIds;
        try
        {
            promptIds = [.. data.Tokenizer.EncodeToIds(prompt)];
        }
        catch (ArgumentException e)
        {
            throw new CorpusException($"--prompt cannot be encoded: {e.Message}");
        }
        if (promptIds.Length == 0)
            promptIds = [data.Train[0]];
        using var generator = new Generator((ulong)options.Seed);
        using var scope = NewDisposeScope();
        var ids = tensor(promptIds.Select(i => (long)i).ToArray()).unsqueeze(0);
        var result = model.Generate(ids, options.SampleTokens, options.Temperature, options.TopK, generator);
        return data.Tokenizer.Decode(result[0].data<long>().Select(i => (int)i));
    }

    private static string Describe(TinyLmOptions options) =>
        (options.Corpus is null ? "the embedded Markov corpus" : Path.GetFileName(options.Corpus)) + $" ({options.Layers}L/{options.Heads}H/{options.Dim}D, context {options.Context})";
}
