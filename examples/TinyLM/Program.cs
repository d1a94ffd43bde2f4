using System.CommandLine;
using Microsoft.Extensions.Logging;
using TinyGpt;
using TorchLoss;

namespace TinyLM;

/// <summary>
/// TinyLM: trains a tiny GPT on characters (or GPT-2 tokens) with TorchLoss and shows the loss and perplexity fall.
/// With no arguments it learns an embedded synthetic corpus whose entropy rate is known exactly.
/// </summary>
public static class Program
{
    /// <summary>Parses the command line and runs; returns 0 on success and <see cref="ExampleExit.UsageError"/> (2) for a bad option or unusable data.</summary>
    public static int Main(string[] args) => Run(args, Console.Out, Console.Error);

    /// <summary>Runs TinyLM with <paramref name="args"/>, writing results to <paramref name="output"/> and errors to <paramref name="error"/>.</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        var d = TinyLmOptions.Embedded;
        var corpus = new Option<string?>("--corpus") { Description = "UTF-8 text file to train on (split 90/10 into train/validation). Default: the embedded synthetic corpus with a known entropy rate.", HelpName = "FILE" };
        var tokenizer = new Option<string>("--tokenizer") { Description = "char: one token per character; gpt2: GPT-2 BPE (Microsoft.ML.Tokenizers, offline).", DefaultValueFactory = _ => d.Tokenizer };
        tokenizer.AcceptOnlyFromAmong("char", "gpt2");
        var layers = IntOption("--layers", "Transformer blocks.", d.Model.Layers);
        var heads = IntOption("--heads", "Attention heads per block (must divide --dim).", d.Model.Heads);
        var dim = IntOption("--dim", "Width of the residual stream.", d.Model.Dim);
        var context = IntOption("--context", "Context window in tokens (at least 2).", d.Model.ContextLength);
        var batch = new Option<int?>("--batch") { Description = $"Windows per micro-batch. Default: {TinyLmOptions.Embedded.Batch} on the embedded corpus, {TinyLmOptions.File.Batch} on a file." };
        var accumulation = IntOption("--accumulation", "Micro-batches per optimiser step (gradient accumulation, normalised by the step's token count).", d.Trainer.AccumulationSteps);
        var steps = new Option<int?>("--steps") { Description = $"Optimiser steps. Default: {TinyLmOptions.Embedded.Trainer.Steps} on the embedded corpus, {TinyLmOptions.File.Trainer.Steps} on a file." };
        var lr = new Option<double?>("--lr") { Description = $"Peak learning rate (after warm-up). Default: {TinyLmOptions.Embedded.Trainer.LearningRate.ToString(System.Globalization.CultureInfo.InvariantCulture)} on the embedded corpus, {TinyLmOptions.File.Trainer.LearningRate.ToString(System.Globalization.CultureInfo.InvariantCulture)} on a file." };
        var minLr = new Option<double?>("--min-lr") { Description = "Learning rate at the end of the cosine decay. Default: --lr / 10." };
        var warmup = IntOption("--warmup", "Linear warm-up steps (at most --steps).", d.Trainer.WarmupSteps);
        var weightDecay = RealOption("--weight-decay", "AdamW weight decay (matrices and embeddings only).", d.Trainer.WeightDecay);
        var gradClip = RealOption("--grad-clip", "Clip the global gradient norm to this value (0 = off).", d.Trainer.GradClip);
        var dropout = RealOption("--dropout", "Dropout probability in [0, 1).", d.Model.Dropout);
        var labelSmoothing = RealOption("--label-smoothing", "Label smoothing ε in [0, 1).", d.Trainer.Loss.LabelSmoothing);
        var smoothing = new Option<string>("--smoothing") { Description = "Where smoothing mass goes: uniform (PyTorch's convention, over all classes) or other-classes (over the wrong classes only).", DefaultValueFactory = _ => TinyLmOptions.SmoothingName(d.Trainer.Loss.Smoothing) };
        smoothing.AcceptOnlyFromAmong("uniform", "other-classes");
        var zLoss = RealOption("--z-loss", "z-loss weight (PaLM: 1e-4); 0 = off.", d.Trainer.Loss.ZLossWeight);
        var seed = new Option<ulong>("--seed") { Description = "Seed of the corpus (embedded), weights, data order, dropout and sampling: equal seeds give equal runs.", DefaultValueFactory = _ => d.Trainer.Seed };
        var evalInterval = new Option<int?>("--eval-interval") { Description = "Evaluate on the whole validation split every N steps (0 = only at the end). Default: a fifth of --steps." };
        var evalBatch = IntOption("--eval-batch", "Windows per validation batch.", d.EvalBatch);
        var logInterval = IntOption("--log-interval", "Log a progress line every N steps.", d.Trainer.LogInterval);
        var checkpointInterval = IntOption("--checkpoint-interval", "Write a checkpoint every N steps (0 = only when the run stops).", d.Trainer.CheckpointInterval);
        var outDir = new Option<string>("--out") { Description = "Output folder: checkpoint.bin, metrics.csv, loss.png, reliability.png, samples.txt, summary.json.", DefaultValueFactory = _ => d.Out, HelpName = "DIR" };
        var resume = new Option<bool>("--resume") { Description = "Continue the run whose checkpoint is in --out (give the same options)." };
        var stopAfter = new Option<int?>("--stop-after") { Description = "Stop after this step and leave a checkpoint; --resume continues (the schedule still spans --steps)." };
        var compareBuiltin = new Option<bool>("--compare-builtin") { Description = "Train a second copy with TorchSharp's nn.CrossEntropyLoss on pre-shifted labels from the same weights and batches, and report per-step |Δloss| and the final max |Δparameter|." };
        var prompt = new Option<string?>("--prompt") { Description = "Text the samples start from. Default: \"the \" on the embedded corpus, a newline on a file." };
        var sampleTokens = IntOption("--sample-tokens", "Tokens to generate after the prompt.", d.SampleTokens);
        var temperature = RealOption("--temperature", "Sampling temperature (0 = always the most likely token).", d.Temperature);
        var topK = IntOption("--top-k", "Sample among the k most likely tokens (0 = all).", d.TopK);
        var fusedHead = new Option<bool>("--fused-head") { Description = "Fuse the output head with the loss (TorchLoss's ChunkedLinearCrossEntropy): the [B, T, V] logits are never materialised, which saves memory and time with GPT-2's 50,257-token vocabulary." };
        var threads = IntOption("--threads", "Torch intra-op threads (0 = one per core).", d.Threads);
        var initFrom = new Option<string?>("--init-from") { Description = "Start from these weights: safetensors or a PyTorch state_dict (nanoGPT names, e.g. from --export). The shape comes from the config.json beside them (else from the weights and --heads) and replaces --layers/--heads/--dim/--context.", HelpName = "FILE" };
        var export = new Option<string?>("--export") { Description = "After training (with --resume on a finished run: without training again), write the model for PyTorch/nanoGPT into this folder: model.safetensors, model.pt (state_dict), config.json, and meta.json for --tokenizer char.", HelpName = "DIR" };
        var distillFrom = new Option<string?>("--distill-from") { Description = "source: train on the embedded corpus's exact next-character distributions as soft targets (TorchLoss's DistillationLoss, forward KL) and log CE(source, model) = H(source) + KL(source‖model) at every evaluation. With --distill-alpha 1 it trains on hard labels and only measures." };
        distillFrom.AcceptOnlyFromAmong("source");
        var teacher = new Option<string?>("--teacher") { Description = "Distil from the trained TinyLM run in DIR (its checkpoint.bin; same corpus and tokenizer) into this run's model.", HelpName = "DIR" };
        var distillAlpha = RealOption("--distill-alpha", "When distilling, weight α of the hard-label loss: α·CE + (1 − α)·τ²·KL (0 = soft targets only).", d.DistillAlpha);
        var distillTemperature = RealOption("--distill-temperature", "When distilling, temperature τ > 0 softening teacher and student (--temperature is the sampling temperature).", d.DistillTemperature);

        // The flags become one model config and one trainer config; unset values take the corpus's defaults.
        TinyLmOptions Compose(ParseResult r)
        {
            var preset = TinyLmOptions.For(r.GetValue(corpus));
            int stepCount = r.GetValue(steps) ?? preset.Trainer.Steps;
            return preset with
            {
                Tokenizer = r.GetValue(tokenizer)!,
                Model = preset.Model with { Layers = r.GetValue(layers), Heads = r.GetValue(heads), Dim = r.GetValue(dim), ContextLength = r.GetValue(context), Dropout = r.GetValue(dropout) },
                Trainer = preset.Trainer with
                {
                    Steps = stepCount, LearningRate = r.GetValue(lr) ?? preset.Trainer.LearningRate, MinLearningRate = r.GetValue(minLr),
                    WarmupSteps = Math.Min(r.GetValue(warmup), stepCount), WeightDecay = r.GetValue(weightDecay), GradClip = r.GetValue(gradClip),
                    AccumulationSteps = r.GetValue(accumulation), Seed = r.GetValue(seed),
                    Loss = new CrossEntropyOptions { LabelSmoothing = r.GetValue(labelSmoothing), Smoothing = TinyLmOptions.ParseSmoothing(r.GetValue(smoothing)!), ZLossWeight = r.GetValue(zLoss) },
                    EvalInterval = r.GetValue(evalInterval) ?? TinyLmOptions.DefaultEvalInterval(stepCount), LogInterval = r.GetValue(logInterval),
                    CheckpointInterval = r.GetValue(checkpointInterval),
                },
                Batch = r.GetValue(batch) ?? preset.Batch, EvalBatch = r.GetValue(evalBatch), Out = r.GetValue(outDir)!, Resume = r.GetValue(resume),
                StopAfter = r.GetValue(stopAfter), CompareBuiltin = r.GetValue(compareBuiltin), Prompt = r.GetValue(prompt),
                SampleTokens = r.GetValue(sampleTokens), Temperature = r.GetValue(temperature), TopK = r.GetValue(topK), FusedHead = r.GetValue(fusedHead), Threads = r.GetValue(threads),
                InitFrom = r.GetValue(initFrom), Export = r.GetValue(export),
                DistillFrom = r.GetValue(distillFrom), Teacher = r.GetValue(teacher), DistillAlpha = r.GetValue(distillAlpha), DistillTemperature = r.GetValue(distillTemperature),
            };
        }

        var root = new RootCommand("TinyLM: train a tiny GPT language model with TorchLoss and watch its loss and perplexity fall.")
        {
            corpus, tokenizer, layers, heads, dim, context, batch, accumulation, steps, lr, minLr, warmup, weightDecay, gradClip,
            dropout, labelSmoothing, smoothing, zLoss, seed, evalInterval, evalBatch, logInterval, checkpointInterval, outDir,
            resume, stopAfter, compareBuiltin, prompt, sampleTokens, temperature, topK, fusedHead, threads, initFrom, export,
            distillFrom, teacher, distillAlpha, distillTemperature,
        };
        root.SetAction(r =>
        {
            var options = Compose(r);
            var problems = options.Validate();
            if (problems.Count > 0)
            {
                foreach (var problem in problems)
                    error.WriteLine($"error: {problem}");
                error.WriteLine("Run with --help to see every option.");
                return ExampleExit.UsageError;
            }
            // Before libtorch loads: sleeping OpenMP waits keep a run fast when other processes share the cores.
            var waits = TorchBackend.UsePassiveOpenMpWaits();
            using var loggers = ExampleLogging.CreateFactory();
            loggers.CreateLogger("TinyLM").LogInformation("{Waits}", waits);
            return TinyLmApp.Run(options, loggers, output, error);
        });
        var parsed = root.Parse(args);
        int exitCode = parsed.Invoke(new InvocationConfiguration { Output = output, Error = error });
        // System.CommandLine reports an unknown option or a malformed value itself, with its own exit code.
        return parsed.Errors.Count > 0 ? ExampleExit.UsageError : exitCode;
    }

    private static Option<int> IntOption(string name, string description, int defaultValue) =>
        new(name) { Description = description, DefaultValueFactory = _ => defaultValue };

    private static Option<double> RealOption(string name, string description, double defaultValue) =>
        new(name) { Description = description, DefaultValueFactory = _ => defaultValue };
}
