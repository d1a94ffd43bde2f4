namespace ChatSft;

/// <summary>What one training run produced.</summary>
/// <param name="Mode">Which tokens the loss counted.</param>
/// <param name="TrainedTokens">Tokens the loss counted over the whole run.</param>
/// <param name="AssistantPerplexity">Perplexity of the held-out assistant tokens (answers and end-of-turn markers), the same tokens for both runs.</param>
/// <param name="Answers">Greedy answers to the held-out questions.</param>
/// <param name="Seconds">Training wall time.</param>
public sealed record RunResult(LossMode Mode, long TrainedTokens, double AssistantPerplexity, AnswerScore Answers, double Seconds);
