using System.Collections;

namespace TinyGpt;

/// <summary>
/// A run's metrics: one <see cref="MetricsRow"/> per optimiser step, with the validation results at evaluation steps.
/// <see cref="GptTrainer"/> appends to it; it is part of a run's state, so its stored form is defined here and
/// <see cref="Checkpoint"/> writes and restores it with the rest of the run.
/// </summary>
public sealed class TrainingHistory : IReadOnlyList<MetricsRow>
{
    private readonly List<MetricsRow> rows = [];

    /// <summary>Steps recorded so far.</summary>
    public int Count => rows.Count;

    /// <summary>The row of the <paramref name="index"/>-th step recorded (0-based).</summary>
    public MetricsRow this[int index] => rows[index];

    /// <inheritdoc />
    public IEnumerator<MetricsRow> GetEnumerator() => rows.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>Records a step.</summary>
    internal void Add(MetricsRow row) => rows.Add(row);

    /// <summary>Adds a validation pass, and the validation seconds so far, to the latest step's row.</summary>
    /// <exception cref="InvalidOperationException">No step has been recorded yet.</exception>
    internal void AddEvaluation(EvaluationResult evaluation, double evaluationSeconds)
    {
        if (rows.Count == 0)
            throw new InvalidOperationException("A validation pass is recorded on the step it follows; no step has been recorded yet.");
        rows[^1] = rows[^1] with
        {
            ValLoss = evaluation.MeanNll,
            ValAccuracy = evaluation.Calibration?.Accuracy,
            ValEce = evaluation.Calibration?.Ece,
            ValConfidence = evaluation.Calibration?.MeanConfidence,
            EvalSeconds = evaluationSeconds,
        };
    }

    /// <summary>Replaces every row (a checkpoint being restored).</summary>
    internal void Replace(IEnumerable<MetricsRow> restored)
    {
        var copy = restored.ToList();
        rows.Clear();
        rows.AddRange(copy);
    }

    /// <summary>Writes the rows in the checkpoint's binary form.</summary>
    internal void Write(BinaryWriter writer)
    {
        writer.Write(rows.Count);
        foreach (var row in rows)
        {
            writer.Write(row.Step);
            writer.Write(row.LearningRate);
            writer.Write(row.TrainLoss);
            writer.Write(row.TrainSeconds);
            writer.Write(row.EvalSeconds);
            foreach (var value in (double?[])[row.ValLoss, row.ValAccuracy, row.ValEce, row.ValConfidence])
            {
                writer.Write(value.HasValue);
                writer.Write(value ?? 0);
            }
        }
    }

    /// <summary>Reads what <see cref="Write"/> wrote.</summary>
    internal static MetricsRow[] Read(BinaryReader reader)
    {
        var read = new MetricsRow[reader.ReadInt32()];
        for (int i = 0; i < read.Length; i++)
        {
            int step = reader.ReadInt32();
            double lr = reader.ReadDouble();
            double train = reader.ReadDouble();
            double trainSeconds = reader.ReadDouble();
            double evalSeconds = reader.ReadDouble();
            read[i] = new MetricsRow(step, lr, train, ReadOptional(reader), trainSeconds, evalSeconds)
            {
                ValAccuracy = ReadOptional(reader),
                ValEce = ReadOptional(reader),
                ValConfidence = ReadOptional(reader),
            };
        }
        return read;
    }

    private static double? ReadOptional(BinaryReader reader)
    {
        bool has = reader.ReadBoolean();
        double value = reader.ReadDouble();
        return has ? value : null;
    }
}
