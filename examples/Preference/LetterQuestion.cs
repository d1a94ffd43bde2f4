namespace Preference;

/// <summary>One question of <see cref="LetterQuestions"/>: the user's request, its correct answer and the plausible wrong one.</summary>
/// <param name="Request">What the user asks, e.g. "final letter of quozt".</param>
/// <param name="Word">The word asked about.</param>
/// <param name="Correct">The letter the request asks for.</param>
/// <param name="Wrong">The letter at the other end of the word: what the same request would get if "first" and "last" were swapped.</param>
public sealed record LetterQuestion(string Request, string Word, string Correct, string Wrong);
