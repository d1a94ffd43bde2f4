using TorchLoss.Metrics;
using static TorchSharp.torch;

namespace TinyGpt;

/// <summary>
/// A validation split read as one long text and scored by TorchLoss's <see cref="PerplexityEvaluator"/> with windows
/// of <c>context</c> tokens that overlap by exactly one (stride = context − 1): every token after the first is predicted
/// exactly once, each window restarting without earlier context, so the token-weighted loss is the model's
/// cross-entropy on the whole split as a model trained on such windows sees it.
/// </summary>
public sealed class ValidationText : IDisposable
{
    /// <summary>Holds <paramref name="tokens"/> for evaluation.</summary>
    /// <param name="tokens">The split's token ids.</param>
    /// <param name="context">Tokens per window: the model's context length.</param>
    /// <param name="batchSize">Windows per model call.</param>
    /// <param name="calibration">Bins and k of the calibration measured alongside; the defaults when null.</param>
    /// <exception cref="ArgumentException">Fewer than 2 tokens, a context below 2 or a batch size below 1.</exception>
    public ValidationText(IReadOnlyList<int> tokens, int context, int batchSize, CalibrationOptions? calibration = null)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        if (context < 2)
            throw new ArgumentException($"context must be at least 2, got {context}.", nameof(context));
        if (batchSize < 1)
            throw new ArgumentException($"batchSize must be at least 1, got {batchSize}.", nameof(batchSize));
        if (tokens.Count < 2)
            throw new ArgumentException($"A split needs at least 2 tokens to score one prediction, got {tokens.Count}.", nameof(tokens));
        Evaluator = new PerplexityEvaluator(context, stride: context - 1, batchSize);
        Calibration = calibration ?? CalibrationOptions.Default;
        Tokens = tensor(tokens.Select(t => (long)t).ToArray()).DetachFromDisposeScope();
    }

    /// <summary>The split's ids, 1-D int64.</summary>
    public Tensor Tokens { get; }

    /// <summary>The sliding-window evaluator (stride = context − 1).</summary>
    public PerplexityEvaluator Evaluator { get; }

    /// <summary>Bins and k of the calibration measured with each evaluation.</summary>
    public CalibrationOptions Calibration { get; }

    /// <summary>Disposes the token tensor.</summary>
    public void Dispose() => Tokens.Dispose();
}
