using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss.Metrics;

/// <summary>
/// Evaluation metrics of an output head straight from the final hidden states and the head weight, a chunk of rows at a
/// time, so that neither evaluation nor calibration materialises the [..., V] logits: per-token NLL and confidence
/// (<see cref="Score"/>), a <see cref="CalibrationTracker"/> fed chunk by chunk (<see cref="UpdateCalibration"/>), and a
/// sliding-window perplexity with calibration from one pass (<see cref="EvaluateHead"/>). The values equal those of the
/// plain logits <c>hidden·weightᵀ + bias</c> to float rounding. Perplexity totals come from a no-grad
/// <see cref="ChunkedLinearCrossEntropy"/>, whose <see cref="LossResult"/> a <see cref="PerplexityTracker"/> takes as it is.
/// </summary>
/// <remarks>
/// A chunk holds about <see cref="ChunkedLinearCrossEntropy.AutomaticChunkBytes"/> of logits (at least one row; for a
/// causal <see cref="CalibrationTracker"/> at least one whole sequence, since it shifts labels itself). Runs under
/// <c>no_grad</c>; reads nothing back to the host except what <see cref="EvaluateHead"/> reports.
/// </remarks>
public static class ChunkedHeadMetrics
{
    /// <summary>Per-token NLL, top-1 confidence and correctness of <c>hidden·weightᵀ + bias</c> against <paramref name="targets"/>.</summary>
    /// <param name="hidden">Final hidden states [..., d]; [B, T, d] with <paramref name="causal"/>.</param>
    /// <param name="weight">The head weight [V, d], hidden's dtype and device.</param>
    /// <param name="targets">Class indices [...] of an integer dtype (in causal mode the unshifted labels [B, T]); <paramref name="ignoreIndex"/> marks uncounted positions.</param>
    /// <param name="lossMask">Optional bool [...] aligned with <paramref name="targets"/>: true = counted.</param>
    /// <param name="causal">Position t is scored against label t+1 (as <see cref="CrossEntropyOptions.Causal"/>).</param>
    /// <param name="ignoreIndex">The target value that is not counted.</param>
    /// <param name="bias">Optional head bias [V].</param>
    /// <exception cref="ArgumentException">Shapes, dtypes, devices or target values are invalid.</exception>
    public static HeadTokenScores Score(Tensor hidden, Tensor weight, Tensor targets, Tensor? lossMask = null, bool causal = false,
        long ignoreIndex = LossDefaults.IgnoreIndex, Tensor? bias = null)
    {
        InputChecks.CheckHead(hidden, weight, bias, nameof(ChunkedHeadMetrics), cpuOnly: false);
        if (causal) InputChecks.CheckSequenceBatch(hidden, nameof(hidden), "d");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var spec = new TargetSpec
        {
            ScoresName = nameof(hidden),
            TargetName = nameof(targets),
            Classes = weight.shape[0],
            ClassesFrom = $"weight shape {InputChecks.Shape(weight)}",
            IgnoreIndex = ignoreIndex,
            Causal = causal,
        };
        var prepared = TargetPreparation.Prepare(hidden, targets, lossMask, spec);
        var (h, w, b) = ComputeInputs(hidden, weight, bias);
        h = h.reshape(-1, h.shape[^1]);
        var counted = prepared.Counted;
        var left = counted.logical_not();
        var safeTarget = prepared.Target.masked_fill(left, 0);
        long rows = h.shape[0];
        var nll = empty(rows, ScalarType.Float64, h.device);
        var confidence = empty(rows, ScalarType.Float64, h.device);
        var correct = empty(rows, ScalarType.Bool, h.device);
        long chunk = ChunkRows(w);
        for (long start = 0; start < rows; start += chunk)
        {
            long length = Math.Min(chunk, rows - start);
            using var chunkScope = NewDisposeScope();
            var logp = nn.functional.linear(h.narrow(0, start, length), w, b).log_softmax(1);
            var target = safeTarget.narrow(0, start, length);
            nll.narrow(0, start, length).copy_(logp.gather(1, target.unsqueeze(1)).squeeze(1).neg());
            var (top, prediction) = logp.max(1);
            confidence.narrow(0, start, length).copy_(top.exp());
            correct.narrow(0, start, length).copy_(prediction.eq(target));
        }
        var shape = prepared.PerTokenShape;
        return new HeadTokenScores(
            nll.masked_fill_(left, 0.0).reshape(shape).MoveToOuterDisposeScope(),
            confidence.masked_fill_(left, 0.0).reshape(shape).MoveToOuterDisposeScope(),
            correct.logical_and_(counted).reshape(shape).MoveToOuterDisposeScope(),
            counted.reshape(shape).MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Folds <c>hidden·weightᵀ + bias</c> into <paramref name="tracker"/> chunk by chunk, exactly as
    /// <see cref="CalibrationTracker.Update"/> on the full logits would (its <see cref="CalibrationTracker.Updates"/> then counts chunks).
    /// </summary>
    /// <param name="tracker">The tracker; with <see cref="CalibrationOptions.Causal"/> hidden is [B, T, d] and the labels unshifted.</param>
    /// <param name="hidden">Final hidden states [..., d], targets' shape plus d.</param>
    /// <param name="weight">The head weight [V, d].</param>
    /// <param name="targets">Class indices [...] as the tracker takes them.</param>
    /// <param name="lossMask">Optional bool [...] aligned with <paramref name="targets"/>: true = counted.</param>
    /// <param name="bias">Optional head bias [V].</param>
    /// <exception cref="ArgumentException">Shapes, dtypes, devices or target values are invalid.</exception>
    public static void UpdateCalibration(CalibrationTracker tracker, Tensor hidden, Tensor weight, Tensor targets, Tensor? lossMask = null, Tensor? bias = null)
    {
        ArgumentNullException.ThrowIfNull(tracker);
        ArgumentNullException.ThrowIfNull(targets);
        InputChecks.CheckHead(hidden, weight, bias, nameof(ChunkedHeadMetrics), cpuOnly: false);
        if (!targets.shape.SequenceEqual(hidden.shape[..^1]))
            throw new ArgumentException($"targets must have hidden's shape without d, {InputChecks.Shape(hidden.shape[..^1])}, got {InputChecks.Shape(targets)}.", nameof(targets));
        if (lossMask is not null && !lossMask.shape.SequenceEqual(targets.shape))
            throw new ArgumentException($"lossMask must have the targets' shape {InputChecks.Shape(targets)}, got {InputChecks.Shape(lossMask)}.", nameof(lossMask));
        bool causal = tracker.Options.Causal;
        if (causal) InputChecks.CheckSequenceBatch(hidden, nameof(hidden), "d");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var (h, w, b) = ComputeInputs(hidden, weight, bias);
        // A causal tracker shifts the labels itself: its chunks are whole sequences [b, T, d].
        var rowsOf = causal ? h : h.reshape(-1, h.shape[^1]);
        var targetRows = causal ? targets : targets.reshape(-1);
        var maskRows = lossMask is null ? null : causal ? lossMask : lossMask.reshape(-1);
        long perItem = causal ? h.shape[1] : 1;
        long chunk = Math.Max(1, ChunkRows(w) / perItem);
        long items = rowsOf.shape[0];
        for (long start = 0; start < items; start += chunk)
        {
            long length = Math.Min(chunk, items - start);
            using var chunkScope = NewDisposeScope();
            var logits = nn.functional.linear(rowsOf.narrow(0, start, length), w, b);
            tracker.Update(logits, targetRows.narrow(0, start, length), maskRows?.narrow(0, start, length));
        }
    }

    /// <summary>
    /// <see cref="PerplexityEvaluator.Evaluate"/> through the head: the same windows, batches and totals, but the model
    /// gives final hidden states and the loss is a no-grad causal <see cref="ChunkedLinearCrossEntropy"/>, so no batch
    /// materialises [B, T, V] logits; <paramref name="calibration"/>, when given, is fed from the same pass.
    /// </summary>
    /// <param name="evaluator">Window length, stride and batch size.</param>
    /// <param name="hiddenStates">Maps ids [B, T] (int64) to final hidden states [B, T, d]; position t predicts token t+1.</param>
    /// <param name="headWeight">The head weight [V, d] (tied embeddings or an <c>nn.Linear(d, V)</c>'s weight).</param>
    /// <param name="tokens">The text's token ids, 1-D, of an integer dtype, on the model's device.</param>
    /// <param name="calibration">Optional tracker with <see cref="CalibrationOptions.Causal"/> set, updated per batch (in chunks).</param>
    /// <param name="progress">Receives a report after each batch (one device read per batch).</param>
    /// <param name="utf8Bytes">Optional UTF-8 byte count of the text, for <see cref="PerplexitySnapshot.BitsPerByte"/>.</param>
    /// <param name="words">Optional word count of the text, for <see cref="PerplexitySnapshot.WordPerplexity"/>.</param>
    /// <param name="headBias">Optional head bias [V].</param>
    /// <param name="cancellationToken">Checked before each batch.</param>
    /// <exception cref="ArgumentException">The tokens are not 1-D integer ids of at least 2 tokens, the calibration tracker is not causal, or the hidden states have the wrong shape.</exception>
    public static PerplexitySnapshot EvaluateHead(this PerplexityEvaluator evaluator, Func<Tensor, Tensor> hiddenStates, Tensor headWeight, Tensor tokens,
        CalibrationTracker? calibration = null, IProgress<PerplexityEvaluationProgress>? progress = null, long? utf8Bytes = null, long? words = null,
        Tensor? headBias = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(evaluator);
        ArgumentNullException.ThrowIfNull(hiddenStates);
        ArgumentNullException.ThrowIfNull(headWeight);
        ArgumentNullException.ThrowIfNull(tokens);
        if (tokens.dim() != 1 || tokens.is_floating_point() || tokens.is_complex() || tokens.dtype == ScalarType.Bool)
            throw new ArgumentException($"tokens must be a 1-D tensor of integer ids, got {tokens.dtype} of shape {InputChecks.Shape(tokens)}.", nameof(tokens));
        if (calibration is not null && !calibration.Options.Causal)
            throw new ArgumentException("The calibration tracker must have CalibrationOptions.Causal = true: the windows are scored as next-token predictions.", nameof(calibration));

        var windows = evaluator.Windows(tokens.shape[0]);
        using var noGrad = no_grad();
        using var loss = new ChunkedLinearCrossEntropy(new CrossEntropyOptions { Causal = true });
        using var tracker = new PerplexityTracker();
        int done = 0;
        while (done < windows.Count)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int count = 1;
            while (count < evaluator.BatchSize && done + count < windows.Count && windows[done + count].Length == windows[done].Length) count++;
            using (var scope = NewDisposeScope())
            {
                var batch = windows.Skip(done).Take(count).ToArray();
                int length = batch[0].Length;
                var ids = stack(batch.Select(w => tokens.narrow(0, w.Start, length)).ToArray()).to(ScalarType.Int64);
                var firstScored = tensor(batch.Select(w => (long)w.FirstScored).ToArray(), device: tokens.device).unsqueeze(1);
                var scored = arange(length, ScalarType.Int64, tokens.device).unsqueeze(0).ge(firstScored);
                // Detached: a parameter's requires_grad would otherwise make the loss sweep its gradients even under no_grad.
                var hidden = hiddenStates(ids).detach();
                using var result = loss.Compute(hidden, headWeight.detach(), ids, scored, bias: headBias?.detach());
                tracker.Update(result);
                if (calibration is not null) UpdateCalibration(calibration, hidden, headWeight, ids, scored, headBias);
            }
            done += count;
            progress?.Report(new PerplexityEvaluationProgress(done, windows.Count, tracker.Tokens, tracker.Perplexity));
        }
        return tracker.Snapshot() with { Utf8Bytes = utf8Bytes, Words = words };
    }

    /// <summary>Hidden [N, d] rows, weight and bias in the compute type (float32, or float64 for float64 inputs).</summary>
    private static (Tensor Hidden, Tensor Weight, Tensor? Bias) ComputeInputs(Tensor hidden, Tensor weight, Tensor? bias)
    {
        var computeType = hidden.dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;
        return (hidden.detach().to(computeType), weight.detach().to(computeType), bias?.detach().to(computeType));
    }

    /// <summary>Rows whose logits fit in <see cref="ChunkedLinearCrossEntropy.AutomaticChunkBytes"/> (at least one).</summary>
    private static long ChunkRows(Tensor weight) =>
        Math.Max(1, ChunkedLinearCrossEntropy.AutomaticChunkBytes / (weight.shape[0] * weight.element_size()));
}
