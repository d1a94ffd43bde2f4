namespace ChatSft;

/// <summary>How greedy answers to held-out conversations turned out.</summary>
/// <param name="Prompts">Conversations asked.</param>
/// <param name="ExactMatches">Answers equal to the correct one and closed by the end-of-turn marker.</param>
/// <param name="Stops">Generations that wrote the end-of-turn marker within the longest possible answer.</param>
/// <param name="UserTurns">Generations that went on to write a "User:" turn (before or after their end-of-turn marker).</param>
/// <param name="Samples">A few generations to show: prompt's last user line, expected answer, generated text.</param>
public sealed record AnswerScore(int Prompts, int ExactMatches, int Stops, int UserTurns, IReadOnlyList<(string Question, string Expected, string Generated)> Samples)
{
    /// <summary>Share of exact matches.</summary>
    public double ExactMatchRate => (double)ExactMatches / Prompts;

    /// <summary>Share of generations that stopped at the end-of-turn marker.</summary>
    public double StopRate => (double)Stops / Prompts;

    /// <summary>Share of generations that started writing the user's turn.</summary>
    public double UserTurnRate => (double)UserTurns / Prompts;
}
