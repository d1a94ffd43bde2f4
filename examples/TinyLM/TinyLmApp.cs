using System.Globalization;
using Microsoft.Extensions.Logging;
using TinyGpt;
using TorchLoss;
using Microsoft.ML.Tokenizers;
using TorchLoss.Metrics;
using TorchLoss.Sft;
using TorchSharp;
using static TorchSharp.torch;

namespace TinyLM;

/// <summary>One TinyLM run: load the corpus, train (or resume), evaluate on the whole validation split, sample, and write the outputs.</summary>
public static class TinyLmApp
{
    /// <summary>Name of the checkpoint file in the output folder.</summary>
    public const string CheckpointFile = "checkpoint.bin";

    /// <summary>Runs TinyLM and returns the process exit code: 0 = success, <see cref="ExampleExit.UsageError"/> for input the user can fix.</summary>
    public static int Run(TinyLmOptions options, ILoggerFactory loggers, TextWriter output, TextWriter error)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loggers);
        // Only what the user can fix (the corpus, a checkpoint, an option combination, the prompt) is a one-line error;
        // anything else is a bug and must surface with its stack trace, not pass for bad data.
        return ExampleExit.Run(() => Train(options, loggers.CreateLogger("TinyLM"), output), error);
    }

    private static int Train(TinyLmOptions options, ILogger log, TextWriter output)
    {
        TorchBackend.EnsureLoaded();
        if (options.Threads > 0)
            set_num_threads(options.Threads);
        bool mapped = NativeHeap.MapLargeBlocks();
        log.LogDebug("native blocks of at least {Bytes:N0} bytes mapped on their own: {Mapped}", NativeHeap.ThresholdBytes, mapped);
        CheckCombinations(options);
        using var init = OpenInitialWeights(options);
        if (init is not null)
            options = options with { Model = options.Model with { Layers = init.Config.Layers, Heads = init.Config.Heads, Dim = init.Config.Dim, ContextLength = init.Config.BlockSize } };
        var data = CorpusData.Load(options.Corpus, options.Tokenizer, options.Model.ContextLength, options.Trainer.Seed);
        int[] prompt = EncodePrompt(options, data);
        var run = new RunPaths(options);
        if (options.Resume && !File.Exists(run.Checkpoint))
            throw new UsageException($"--resume: there is no checkpoint at '{run.Checkpoint}'.");
        var config = options.Model with { VocabSize = data.VocabularySize };
        LogCorpus(log, data, options);

        // Teachers are built before the student is seeded: building a model draws from torch's generator.
        using var distillation = DistillationRun.Create(options, data, log);
        using var source = SourceMeasurement.For(data, options.Tokenizer);
        manual_seed(options.Trainer.TorchSeed);
        using var model = new Gpt(config);
        if (init is not null)
            LoadInitialWeights(model, init, data, log);
        log.LogInformation("model: {Layers} layers, {Heads} heads, {Dim} dims, context {Context}, vocabulary {Vocab}: {Params:N0} parameters; {Threads} torch threads, OpenMP wait policy {WaitPolicy}",
            config.Layers, config.Heads, config.Dim, config.ContextLength, config.VocabSize, model.ParameterCount, get_num_threads(), TorchBackend.OpenMpWaitPolicy ?? "default");

        if (options.CompareBuiltin)
            return BuiltinComparison.Run(options, model, data, run.Directory, log, output);

        using var fusedLoss = options.FusedHead ? new FusedHeadTrainingLoss(options.Trainer.Loss) : null;
        // The plain head's logits have one reader, the trainer's own loss, so their gradient may overwrite them
        // (GradientInPlace, docs/performance.md); distillation reads the same logits twice, and the fused head has none.
        ITrainingLoss? headLoss = (ITrainingLoss?)fusedLoss ?? distillation?.Loss;
        using var plainLoss = headLoss is null ? new CausalLMTrainingLoss(options.Trainer.Loss with { GradientInPlace = true }) : null;
        using var trainer = new GptTrainer(model, options.Trainer, headLoss ?? plainLoss);
        using var validation = new ValidationText(data.Validation, options.Model.ContextLength, options.EvalBatch);
        var final = TrainAndEvaluate(trainer, options, data, run, validation, distillation, source, log);

        string samples = Sample(model, data.Tokenizer, prompt, options);
        WriteSamples(run, samples, options, output);
        WriteCharts(run, trainer, final, data, distillation, options, output);
        WriteDecomposition(final, data, source, options, output);
        WriteSummary(run, trainer, final, data, distillation, source, options, model, output);
        if (options.Export is { } export)
        {
            GptExport.Write(model, export, data.Tokenizer is CharTokenizer chars ? CharVocabulary.From(chars) : null);
            output.WriteLine($"exported for PyTorch: {Path.GetFullPath(export)}");
        }
        return ExampleExit.Success;
    }

    /// <summary>Where a run's files go.</summary>
    private sealed class RunPaths(TinyLmOptions options)
    {
        public string Directory { get; } = Path.GetFullPath(options.Out);

        public string Checkpoint => Path.Combine(Directory, CheckpointFile);

        public string File(string name) => Path.Combine(Directory, name);
    }

    /// <summary>Refuses option combinations that cannot make one run (each value alone was checked by <see cref="TinyLmOptions.Validate"/>).</summary>
    private static void CheckCombinations(TinyLmOptions options)
    {
        if (!options.CompareBuiltin)
            return;
        if (options.Trainer.Loss.ZLossWeight > 0 || options.Trainer.Loss.Smoothing == SmoothingKind.OtherClasses)
            throw new UsageException("--compare-builtin compares against nn.CrossEntropyLoss, which has neither z-loss nor other-classes smoothing; drop --z-loss / --smoothing other-classes.");
        if (options.FusedHead)
            throw new UsageException("--compare-builtin compares the plain head's logits with nn.CrossEntropyLoss; drop --fused-head.");
        if (options.Resume)
            throw new UsageException("--compare-builtin always trains both copies from scratch; it cannot be combined with --resume.");
        if (options.Export is not null)
            throw new UsageException("--compare-builtin trains two copies; --export exports the model of an ordinary run. Drop one of them.");
    }

    private static void LogCorpus(ILogger log, CorpusData data, TinyLmOptions options)
    {
        log.LogInformation("corpus: {Corpus}; tokenizer: {Tokenizer}; {Train:N0} training and {Val:N0} validation tokens",
            data.Description, data.TokenizerName, data.Train.Length, data.Validation.Length);
        if (data.Source is not { } source)
            return;
        log.LogInformation("source entropy rate H = {H:F4} nats/char: no model can do better; perplexity floor exp(H) = {Floor:F4}",
            source.EntropyRate, Math.Exp(source.EntropyRate));
        log.LogInformation("on windows of {Context} characters that start without history the floor is {Windowed:F4} nats/char (the first {K} predictions of each window see fewer than {Order} characters)",
            options.Model.ContextLength, source.WindowedFloor(options.Model.ContextLength), source.Order - 1, source.Order);
    }

    private static void LoadInitialWeights(Gpt model, ImportedWeights init, CorpusData data, ILogger log)
    {
        CheckVocabulary(init, data);
        try
        {
            GptWeights.Load(model, init.State);
        }
        catch (InvalidDataException e)
        {
            throw new UsageException($"--init-from: {e.Message}");
        }
        log.LogInformation("initialised from {Path}; shape from {Source}", init.Path, init.ConfigSource);
    }

    /// <summary>Trains (or resumes) to the end or to --stop-after, and returns the final evaluation on the whole validation split.</summary>
    private static EvaluationResult TrainAndEvaluate(GptTrainer trainer, TinyLmOptions options, CorpusData data, RunPaths run,
        ValidationText validation, DistillationRun? distillation, SourceMeasurement? source, ILogger log)
    {
        using var batches = new RandomWindowBatches(data.Train, options.Batch, options.Model.ContextLength, options.Trainer.Seed);
        string fingerprint = options.Fingerprint();
        if (options.Resume)
            Resume(trainer, batches, run.Checkpoint, fingerprint, log);
        Directory.CreateDirectory(run.Directory);

        void Observe(EvaluationBatch batch)
        {
            distillation?.Observe(batch);
            source?.Observe(batch);
        }
        // Only these observers need each validation batch's logits; without them a fused head evaluates without logits.
        Action<EvaluationBatch>? observe = distillation is null && source is null ? null : Observe;
        void EndPass(int step)
        {
            distillation?.OnEvaluation(step, log);
            source?.EndPass();
        }
        trainer.Fit(batches, validation, new FitOptions
        {
            Logger = log,
            CheckpointPath = run.Checkpoint,
            StopAfterStep = options.StopAfter,
            Metadata = fingerprint,
            OnEvaluation = (step, _) => EndPass(step),
            OnValidationBatch = observe,
        });

        if (trainer.Step < trainer.Options.Steps)
            log.LogInformation("stopped after step {Step} of {Steps}; continue with the same options and --resume", trainer.Step, trainer.Options.Steps);
        if (trainer.Step == trainer.Options.Steps && trainer.LastEvaluation is { } last)
            return last;
        var final = trainer.Evaluate(validation, observe);
        EndPass(trainer.Step);
        return final;
    }

    private static void Resume(GptTrainer trainer, RandomWindowBatches batches, string checkpoint, string fingerprint, ILogger log)
    {
        try
        {
            var (_, storedFingerprint) = Checkpoint.ReadHeader(checkpoint);
            if (storedFingerprint != fingerprint)
                throw new UsageException($"--resume: the checkpoint was written with different options.\n  checkpoint: {storedFingerprint}\n  now:        {fingerprint}");
            Checkpoint.Load(checkpoint, trainer, batches);
        }
        catch (InvalidDataException e)
        {
            throw new CorpusException($"--resume: {e.Message}");
        }
        log.LogInformation("resumed from {Path} at step {Step}/{Steps}", checkpoint, trainer.Step, trainer.Options.Steps);
    }

    private static void WriteSamples(RunPaths run, string samples, TinyLmOptions options, TextWriter output)
    {
        File.WriteAllText(run.File("samples.txt"), samples);
        output.WriteLine();
        output.WriteLine($"--- sample (temperature {options.Temperature.ToString(CultureInfo.InvariantCulture)}, top-k {options.TopK}) ---");
        output.WriteLine(samples);
        output.WriteLine("---");
    }

    private static void WriteCharts(RunPaths run, GptTrainer trainer, EvaluationResult final, CorpusData data, DistillationRun? distillation, TinyLmOptions options, TextWriter output)
    {
        MetricsCsv.Write(run.File("metrics.csv"), trainer.History, distillation?.Columns());
        var floor = data.Source is { } s ? (s.EntropyRate, "entropy rate H") : ((double, string)?)null;
        if (trainer.History.Count > 0)
            LossChart.Write(run.File("loss.png"), trainer.History, $"TinyLM on {Describe(options)}", floor);
        if (final.Calibration is { } calibration)
        {
            ReliabilityChart.Write(run.File("reliability.png"), [($"TinyLM on {Describe(options)}, validation", calibration)]);
            output.WriteLine($"validation accuracy {calibration.Accuracy:P2} at mean confidence {calibration.MeanConfidence:P2}: ECE {calibration.Ece:F4} over {calibration.Bins} bins");
        }
    }

    /// <summary>
    /// On the embedded corpus: the validation loss as H + (windows without history) + KL + sampling noise, each term
    /// measured on the validation windows themselves, so the four add up exactly and the KL is the exact one.
    /// </summary>
    private static void WriteDecomposition(EvaluationResult final, CorpusData data, SourceMeasurement? source, TinyLmOptions options, TextWriter output)
    {
        if (data.Source is not { } src || source?.Last is not { } exact)
            return;
        double h = src.EntropyRate;
        output.WriteLine($"validation cross-entropy {final.MeanNll:F4} nats/char = entropy rate H {h:F4} + gap {final.MeanNll - h:F4}; measured on the same {exact.Positions:N0} positions, the gap is");
        output.WriteLine($"  {exact.TeacherEntropy - h:F4} for windows starting without history (H(source) on these windows {exact.TeacherEntropy:F4}; unavoidable here),");
        output.WriteLine($"  {exact.KlDivergence:F4} the KL divergence of the model from the source (exact, from the source's distributions), and");
        output.WriteLine($"  {final.MeanNll - exact.CrossEntropy:F4} sampling noise of the {final.Tokens:N0}-token split (its NLL minus the exact CE(source, model) {exact.CrossEntropy:F4})");
        output.WriteLine($"perplexity {final.Perplexity:F4} vs floor exp(H) = {Math.Exp(h):F4}");
    }

    private static void WriteSummary(RunPaths run, GptTrainer trainer, EvaluationResult final, CorpusData data, DistillationRun? distillation,
        SourceMeasurement? source, TinyLmOptions options, Gpt model, TextWriter output)
    {
        var summary = Summarize(trainer, final, data, source, options, model);
        distillation?.Summarize(summary.Extra, options);
        output.WriteLine($"training: {trainer.TrainTokens:N0} tokens in {summary.TrainSeconds:F1} s ({summary.TokensPerSecond:N0} tokens/s); validation passes: {summary.EvalSeconds:F1} s; peak resident memory {summary.Extra["peak_resident_mib"] ?? "unknown"} MiB");
        string path = summary.WriteTo(run.Directory);
        output.WriteLine($"{path}:");
        output.WriteLine(summary.ToJson());
    }

    /// <summary>The prompt's token ids, checked before anything is trained or written.</summary>
    private static int[] EncodePrompt(TinyLmOptions options, CorpusData data)
    {
        string prompt = options.Prompt ?? data.DefaultPrompt;
        int[] ids;
        try
        {
            ids = [.. data.Tokenizer.EncodeToIds(prompt)];
        }
        catch (ArgumentException e)
        {
            throw new UsageException($"--prompt cannot be encoded: {e.Message}");
        }
        return ids.Length > 0 ? ids : [data.Train[0]];
    }

    /// <summary>The weights --init-from names, or null without it.</summary>
    private static ImportedWeights? OpenInitialWeights(TinyLmOptions options)
    {
        if (options.InitFrom is not { } path)
            return null;
        if (!File.Exists(path))
            throw new UsageException($"--init-from: there is no file '{path}'.");
        ImportedWeights init;
        try
        {
            init = ImportedWeights.Open(path, options.Model.Heads);
        }
        catch (Exception e) when (e is InvalidDataException or IOException)
        {
            throw new UsageException($"--init-from: '{path}' cannot be read as model weights: {e.Message}");
        }
        try
        {
            init.Config.ToGptConfig();
            return init;
        }
        catch (ArgumentException e)
        {
            init.Dispose();
            throw new UsageException($"--init-from: the shape of '{path}' is not a valid model: {e.Message}");
        }
    }

    /// <summary>Refuses weights whose token ids mean something else than the corpus's.</summary>
    private static void CheckVocabulary(ImportedWeights init, CorpusData data)
    {
        if (init.Config.VocabSize != data.VocabularySize)
            throw new UsageException($"--init-from: the weights have a vocabulary of {init.Config.VocabSize} tokens, but the corpus's tokenizer has {data.VocabularySize}.");
        if (init.Vocabulary is { } stored && data.Tokenizer is CharTokenizer chars)
        {
            var corpus = CharVocabulary.From(chars);
            if (stored.FirstDifference(corpus) is { } id)
                throw new UsageException($"--init-from: the {CharVocabulary.FileName} beside the weights is not the corpus's vocabulary: id {id} is {stored.Describe(id)} there and {corpus.Describe(id)} in the corpus.");
        }
    }

    /// <summary>The run's summary.json contents.</summary>
    private static RunSummary Summarize(GptTrainer trainer, EvaluationResult final, CorpusData data, SourceMeasurement? measured, TinyLmOptions options, Gpt model)
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
            extra["windowed_floor"] = source.WindowedFloor(options.Model.ContextLength);
            extra["gap_to_entropy_rate"] = final.MeanNll - source.EntropyRate;
        }
        if (measured?.Last is { } exact)
        {
            extra["val_source_entropy"] = exact.TeacherEntropy;
            extra["val_source_cross_entropy"] = exact.CrossEntropy;
            extra["val_source_kl"] = exact.KlDivergence;
            extra["val_sampling_noise"] = final.MeanNll - exact.CrossEntropy;
        }
        return new RunSummary
        {
            ValLoss = final.MeanNll,
            ValPerplexity = final.Perplexity,
            TrainSeconds = Math.Round(trainer.TrainingSeconds, 2),
            EvalSeconds = Math.Round(trainer.EvaluationSeconds, 2),
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

    private static string Sample(Gpt model, Tokenizer tokenizer, int[] promptIds, TinyLmOptions options)
    {
        using var generator = new Generator(options.Trainer.Seed);
        using var scope = NewDisposeScope();
        var ids = tensor(promptIds.Select(i => (long)i).ToArray()).unsqueeze(0);
        var result = model.Generate(ids, options.SampleTokens, options.Temperature, options.TopK, generator);
        return tokenizer.Decode(result[0].data<long>().Select(i => (int)i));
    }

    private static string Describe(TinyLmOptions options) =>
        (options.Corpus is null ? "the embedded Markov corpus" : Path.GetFileName(options.Corpus)) + $" ({options.Model.Layers}L/{options.Model.Heads}H/{options.Model.Dim}D, context {options.Model.ContextLength})";
}
