using TinyGpt;
using TorchLoss;
using TorchLoss.Metrics;

namespace TinyLM;

/// <summary>
/// On the embedded corpus, every validation pass also scores the model against the source's exact next-character
/// distributions at τ = 1, on the very windows the validation loss is measured on. The gap of the validation loss to
/// the entropy rate then splits exactly: H(source | these windows) − H (windows starting without history), KL(source‖model)
/// (never negative) and the sampling noise of the split (the sampled text's NLL minus the exact CE(source, model)).
/// </summary>
public sealed class SourceMeasurement : IDisposable
{
    private readonly DistillationTrainingLoss meter;

    private SourceMeasurement(DistillationTrainingLoss meter) => this.meter = meter;

    /// <summary>The totals of the latest whole validation pass; null before the first.</summary>
    public DistillationTotals? Last { get; private set; }

    /// <summary>The measurement for <paramref name="data"/>, or null when its source is not known (a corpus file) or its tokens are not characters.</summary>
    public static SourceMeasurement? For(CorpusData data, string tokenizer)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data.Source is not { } source || tokenizer != "char")
            return null;
        var teacher = new SourceTeacher(source, data.Tokenizer, data.VocabularySize);
        // α = 1: the meter is never a training loss here; only its distillation totals are read.
        return new SourceMeasurement(new DistillationTrainingLoss(batch => teacher.Logits(batch.Ids), alpha: 1, new DistillationOptions()));
    }

    /// <summary>Adds a validation batch to the current pass.</summary>
    public void Observe(EvaluationBatch batch) => meter.Observe(batch);

    /// <summary>Ends the current pass: its totals become <see cref="Last"/>.</summary>
    public void EndPass()
    {
        var totals = meter.TakeEvaluationTotals();
        if (totals.Positions > 0)
            Last = totals;
    }

    /// <summary>Disposes the meter.</summary>
    public void Dispose() => meter.Dispose();
}
