namespace TorchLoss.Metrics;

/// <summary>Progress of a <see cref="PerplexityEvaluator"/> run, reported after each batch of windows.</summary>
/// <param name="WindowsDone">Windows scored so far.</param>
/// <param name="WindowCount">Windows in the whole evaluation.</param>
/// <param name="TokensScored">Tokens scored so far.</param>
/// <param name="Perplexity">Token-weighted perplexity over the tokens scored so far.</param>
public sealed record PerplexityEvaluationProgress(long WindowsDone, long WindowCount, long TokensScored, double Perplexity);
