using static TorchSharp.torch;

namespace TorchLoss.Metrics;

/// <summary>
/// One batch of windows exactly as <see cref="PerplexityEvaluator"/> handed it to its causal <see cref="TokenCrossEntropy"/>: the
/// model's logits, the window ids as unshifted labels, and the mask of the positions this batch scores. Pass it on
/// to other metrics so one model pass feeds them all, e.g.
/// <c>onBatch: b =&gt; calibration.Update(b.Logits, b.Labels, b.LossMask)</c>.
/// </summary>
/// <remarks>The tensors belong to the evaluator and are disposed after the callback returns: use them, do not keep them.</remarks>
/// <param name="Logits">Model output [B, T, V]; position t predicts token t+1.</param>
/// <param name="Labels">The windows' token ids [B, T] (int64), unshifted.</param>
/// <param name="LossMask">Bool [B, T] aligned with <paramref name="Labels"/>: true where the token is scored by this batch.</param>
public sealed record EvaluationBatch(Tensor Logits, Tensor Labels, Tensor LossMask);
