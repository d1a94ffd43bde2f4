using System.Globalization;
using Microsoft.Extensions.Logging;
using TinyGpt;
using TorchLoss;
using TorchLoss.Metrics;

namespace TinyLM;

/// <summary>
/// What <c>--distill-from source</c> or <c>--teacher DIR</c> adds to a run: the teacher, the training loss
/// α·CE + (1 − α)·τ²·KL (TinyGpt's <see cref="DistillationTrainingLoss"/>), and the distillation totals of every
/// evaluation for the log, metrics.csv and summary.json.
/// </summary>
public sealed class DistillationRun : IDisposable
{
    private readonly Gpt? teacherModel;
    private readonly Dictionary<int, DistillationTotals> byStep = [];

    private DistillationRun(string teacherName, Gpt? teacherModel, DistillationTrainingLoss loss)
    {
        TeacherName = teacherName;
        this.teacherModel = teacherModel;
        Loss = loss;
    }

    /// <summary>"source" or "teacher": how the log and the CSV columns name the target distribution.</summary>
    public string TeacherName { get; }

    /// <summary>The trainer's loss.</summary>
    public DistillationTrainingLoss Loss { get; }

    /// <summary>The totals of the last evaluation pass.</summary>
    public DistillationTotals? LastEvaluation { get; private set; }

    /// <summary>
    /// The distillation the options ask for, or null. Call before seeding the student: loading a teacher builds a model,
    /// which draws from torch's generator.
    /// </summary>
    /// <exception cref="UsageException">The options cannot distil on this corpus or from this teacher.</exception>
    public static DistillationRun? Create(TinyLmOptions options, CorpusData data, ILogger log)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(data);
        if (options.DistillFrom is null && options.Teacher is null)
            return null;
        if (options.DistillFrom is not null && options.Teacher is not null)
            throw new UsageException("--distill-from source and --teacher both name a teacher; give one.");
        if (options.FusedHead || options.CompareBuiltin)
            throw new UsageException("Distillation needs the model's logits and its own loss; drop --fused-head / --compare-builtin.");
        var distillation = new DistillationOptions { Temperature = options.DistillTemperature };
        if (options.DistillFrom is not null)
        {
            if (data.Source is not { } source || options.Tokenizer != "char")
                throw new UsageException("--distill-from source needs the embedded corpus with the char tokenizer: only there is the true next-character distribution known.");
            var teacher = new SourceTeacher(source, data.Tokenizer, data.VocabularySize);
            log.LogInformation("distilling from the source's exact next-character distributions: hard-label weight α = {Alpha}, τ = {Tau}", options.DistillAlpha, options.DistillTemperature);
            return new DistillationRun("source", null, new DistillationTrainingLoss(batch => teacher.Logits(batch.Ids), options.DistillAlpha, distillation, options.Trainer.Loss));
        }

        string path = Path.Combine(options.Teacher!, TinyLmApp.CheckpointFile);
        if (!File.Exists(path))
            throw new UsageException($"--teacher: there is no checkpoint at '{path}' (train the teacher with --out {options.Teacher} first).");
        var model = Checkpoint.LoadModel(path);
        if (model.Config.VocabSize != data.VocabularySize || model.Config.ContextLength < options.Model.ContextLength)
        {
            var config = model.Config;
            model.Dispose();
            throw new UsageException($"--teacher: the teacher in '{path}' has vocabulary {config.VocabSize} and context {config.ContextLength}; " +
                $"this run needs vocabulary {data.VocabularySize} (same corpus and tokenizer) and a context of at least {options.Model.ContextLength}.");
        }
        model.eval();
        log.LogInformation("distilling from the teacher in {Path} ({Layers} layers, {Dim} dims, {Params:N0} parameters): hard-label weight α = {Alpha}, τ = {Tau}",
            path, model.Config.Layers, model.Config.Dim, model.ParameterCount, options.DistillAlpha, options.DistillTemperature);
        return new DistillationRun("teacher", model, new DistillationTrainingLoss(batch => model.forward(batch.Ids), options.DistillAlpha, distillation, options.Trainer.Loss));
    }

    /// <summary>Adds one validation batch (scored once by the trainer's evaluator) to the current evaluation's totals.</summary>
    public void Observe(EvaluationBatch batch) => Loss.Observe(batch);

    /// <summary>Takes the totals of the evaluation pass that just ended, logs CE = H + KL and keeps them for metrics.csv.</summary>
    public void OnEvaluation(int step, ILogger log)
    {
        var totals = Loss.TakeEvaluationTotals();
        if (totals.Positions == 0) return;
        byStep[step] = totals;
        LastEvaluation = totals;
        log.LogInformation("step {Step} | CE({Teacher}, model) {Ce:F4} = H({Teacher}) {H:F4} + KL({Teacher}‖model) {Kl:F4} nats/token",
            step, TeacherName, totals.CrossEntropy, TeacherName, totals.TeacherEntropy, TeacherName, totals.KlDivergence);
    }

    /// <summary>metrics.csv's extra columns: mean H, CE and KL per position at every evaluated step.</summary>
    public IReadOnlyList<MetricsColumn> Columns() =>
    [
        new($"{TeacherName}_entropy", Values(t => t.TeacherEntropy)),
        new($"{TeacherName}_cross_entropy", Values(t => t.CrossEntropy)),
        new($"{TeacherName}_kl", Values(t => t.KlDivergence)),
    ];

    /// <summary>summary.json's distillation fields: the final evaluation's and the whole training's totals.</summary>
    public void Summarize(IDictionary<string, object?> extra, TinyLmOptions options)
    {
        ArgumentNullException.ThrowIfNull(extra);
        ArgumentNullException.ThrowIfNull(options);
        extra["distill_teacher"] = TeacherName == "source" ? "source" : Path.GetFullPath(options.Teacher!);
        extra["distill_alpha"] = options.DistillAlpha;
        extra["distill_temperature"] = options.DistillTemperature;
        if (LastEvaluation is { } v)
            extra["distill_val"] = Describe(v);
        extra["distill_train"] = Describe(Loss.TrainingTotals);
    }

    private static Dictionary<string, object> Describe(DistillationTotals t) => new()
    {
        ["teacher_entropy_sum"] = t.TeacherEntropySum,
        ["cross_entropy_sum"] = t.CrossEntropySum,
        ["kl_sum"] = t.KlDivergenceSum,
        ["positions"] = t.Positions,
        ["teacher_entropy"] = t.TeacherEntropy,
        ["cross_entropy"] = t.CrossEntropy,
        ["kl"] = t.KlDivergence,
    };

    private Dictionary<int, string> Values(Func<DistillationTotals, double> value) =>
        byStep.ToDictionary(kv => kv.Key, kv => value(kv.Value).ToString("F6", CultureInfo.InvariantCulture));

    /// <summary>Disposes the loss and the teacher model.</summary>
    public void Dispose()
    {
        Loss.Dispose();
        teacherModel?.Dispose();
    }
}
