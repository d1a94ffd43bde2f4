using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss.Metrics;

/// <summary>
/// Perplexity of a text longer than the model's context, by the sliding-window algorithm of Hugging Face's
/// "Perplexity of fixed-length models": windows of <see cref="ContextLength"/> tokens start every
/// <see cref="Stride"/> tokens, and each window scores only the tokens no earlier window scored, so the
/// overlapping tokens serve as context and are masked from the loss. The result is token-weighted
/// (exp(Σ NLL / Σ tokens)), computed with a causal <see cref="TokenCrossEntropy"/> and a <see cref="PerplexityTracker"/>.
/// </summary>
/// <remarks>
/// <para>
/// The first token of the text is never scored (nothing precedes it; prepend a BOS token to score it). With a
/// stride below the context length every later token is predicted exactly once, with at least
/// <c>ContextLength − Stride</c> tokens of context (less only near the start). A stride equal to the context
/// length gives disjoint windows: each window's first token is context only, as in block-wise evaluation; so when
/// the text ends one token into a new window, that window is not run and the text's last token goes unscored.
/// Smaller strides give more context per prediction (a lower, more faithful perplexity) and cost more windows.
/// </para>
/// <para>
/// The model runs under <c>no_grad</c>; put it in evaluation mode (<c>model.eval()</c>) first. Windows of equal
/// length are batched <see cref="BatchSize"/> at a time; only the last window can be shorter, and it runs alone,
/// so the model never sees padding.
/// </para>
/// </remarks>
/// <example>
/// <code>
/// model.eval();
/// var evaluator = new PerplexityEvaluator(contextLength: 256, stride: 128, batchSize: 8);
/// var result = evaluator.Evaluate(ids => model.forward(ids), torch.tensor(tokenIds), progress: new Progress&lt;PerplexityEvaluationProgress&gt;(p => Console.WriteLine(p)));
/// Console.WriteLine($"perplexity {result.Perplexity:F2} over {result.Tokens} tokens");
/// </code>
/// </example>
public sealed class PerplexityEvaluator
{
    /// <summary>Creates an evaluator.</summary>
    /// <param name="contextLength">Tokens per window (the model's context); at least 2.</param>
    /// <param name="stride">Tokens between window starts; from 1 to <paramref name="contextLength"/>.</param>
    /// <param name="batchSize">Windows per model call; at least 1.</param>
    /// <exception cref="ArgumentOutOfRangeException">A value is out of range.</exception>
    public PerplexityEvaluator(int contextLength, int stride, int batchSize = 8)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(contextLength, 2);
        ArgumentOutOfRangeException.ThrowIfLessThan(stride, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(stride, contextLength);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        ContextLength = contextLength;
        Stride = stride;
        BatchSize = batchSize;
    }

    /// <summary>Tokens per window.</summary>
    public int ContextLength { get; }

    /// <summary>Tokens between window starts.</summary>
    public int Stride { get; }

    /// <summary>Windows per model call.</summary>
    public int BatchSize { get; }

    /// <summary>The windows an evaluation of <paramref name="tokenCount"/> tokens runs, in order; each scores at least one token.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="tokenCount"/> is below 2.</exception>
    public IReadOnlyList<EvaluationWindow> Windows(long tokenCount)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(tokenCount, 2);
        var windows = new List<EvaluationWindow>();
        long scoredUpTo = 0;   // tokens before this index are scored (or are the unscorable first token)
        for (long start = 0; ; start += Stride)
        {
            long end = Math.Min(start + ContextLength, tokenCount);
            var window = new EvaluationWindow(start, (int)(end - start), (int)Math.Max(1, scoredUpTo - start));
            // Only disjoint windows can end on a window with nothing to score: a single token, its unscored first.
            if (window.ScoredTokens == 0) return windows;
            windows.Add(window);
            scoredUpTo = end;
            if (end == tokenCount) return windows;
        }
    }

    /// <summary>Scores <paramref name="tokens"/> with <paramref name="model"/> and returns the totals.</summary>
    /// <param name="model">Maps ids [B, T] (int64) to next-token logits [B, T, V]; position t predicts token t+1.</param>
    /// <param name="tokens">The text's token ids, 1-D, of an integer dtype, on the model's device.</param>
    /// <param name="progress">Receives a report after each batch (which reads the device once per batch).</param>
    /// <param name="utf8Bytes">Optional UTF-8 byte count of the text, to get <see cref="PerplexitySnapshot.BitsPerByte"/>.</param>
    /// <param name="words">Optional whitespace-separated word count of the text, to get <see cref="PerplexitySnapshot.WordPerplexity"/>.</param>
    /// <param name="onBatch">
    /// Optional: receives each batch's logits, labels and scored-position mask right after the loss, so other metrics
    /// (e.g. a <see cref="CalibrationTracker"/>) share the one model pass. The tensors are freed when it returns.
    /// </param>
    /// <param name="cancellationToken">Checked before each batch.</param>
    /// <returns>The token-weighted totals; <see cref="PerplexitySnapshot.Updates"/> is the number of model calls.</returns>
    /// <exception cref="ArgumentException"><paramref name="tokens"/> is not a 1-D integer tensor of at least 2 tokens, or the model's output has the wrong shape.</exception>
    public PerplexitySnapshot Evaluate(Func<Tensor, Tensor> model, Tensor tokens, IProgress<PerplexityEvaluationProgress>? progress = null,
        long? utf8Bytes = null, long? words = null, Action<EvaluationBatch>? onBatch = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokens);
        if (tokens.dim() != 1 || tokens.is_floating_point() || tokens.is_complex() || tokens.dtype == ScalarType.Bool)
            throw new ArgumentException($"tokens must be a 1-D tensor of integer ids, got {tokens.dtype} of shape [{string.Join(", ", tokens.shape)}].", nameof(tokens));
        if (tokens.shape[0] < 2)
            throw new ArgumentException($"tokens must hold at least 2 ids to predict one, got {tokens.shape[0]}.", nameof(tokens));
        if (utf8Bytes < 0) throw new ArgumentOutOfRangeException(nameof(utf8Bytes), utf8Bytes, "A byte count cannot be negative.");
        if (words < 0) throw new ArgumentOutOfRangeException(nameof(words), words, "A word count cannot be negative.");

        var windows = Windows(tokens.shape[0]);
        using var noGrad = no_grad();
        using var loss = new TokenCrossEntropy(new CrossEntropyOptions { Causal = true });
        using var tracker = new PerplexityTracker();
        int done = 0;
        while (done < windows.Count)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int count = 1;
            while (count < BatchSize && done + count < windows.Count && windows[done + count].Length == windows[done].Length) count++;
            ScoreBatch(model, tokens, loss, tracker, onBatch, windows, done, count);
            done += count;
            progress?.Report(new PerplexityEvaluationProgress(done, windows.Count, tracker.Tokens, tracker.Perplexity));
        }
        return tracker.Snapshot() with { Utf8Bytes = utf8Bytes, Words = words };
    }

    private static void ScoreBatch(Func<Tensor, Tensor> model, Tensor tokens, TokenCrossEntropy loss, PerplexityTracker tracker,
        Action<EvaluationBatch>? onBatch, IReadOnlyList<EvaluationWindow> windows, int first, int count)
    {
        using var scope = NewDisposeScope();
        var batch = Enumerable.Range(first, count).Select(i => windows[i]).ToArray();
        int length = batch[0].Length;
        var ids = stack(batch.Select(w => tokens.narrow(0, w.Start, length)).ToArray()).to(ScalarType.Int64);
        var firstScored = tensor(batch.Select(w => (long)w.FirstScored).ToArray(), device: tokens.device).unsqueeze(1);
        var scored = arange(length, ScalarType.Int64, tokens.device).unsqueeze(0).ge(firstScored);
        var logits = model(ids);
        using var result = loss.Compute(logits, ids, scored);
        tracker.Update(result);
        onBatch?.Invoke(new EvaluationBatch(logits, ids, scored));
    }
}
