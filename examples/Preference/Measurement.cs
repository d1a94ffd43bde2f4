namespace Preference;

/// <summary>The held-out numbers of one policy at one step; every value is a mean over the held-out pairs or positions.</summary>
/// <param name="Step">Preference steps taken (0 = the SFT model).</param>
/// <param name="RewardAccuracy">Share of pairs whose chosen reward, as the loss defines it, exceeds the rejected one (ties are wrong, as in TRL).</param>
/// <param name="RewardMargin">Mean chosen minus rejected reward, as the loss defines it.</param>
/// <param name="ChosenLogProb">Mean Σ log p of the chosen answer (its letter and end-of-turn marker).</param>
/// <param name="RejectedLogProb">Mean Σ log p of the rejected answer.</param>
/// <param name="PrefersChosen">Share of pairs where the policy gives the chosen answer the higher Σ log p (the same measure for every loss).</param>
/// <param name="KlFromReference">Mean over the answer positions of both completions of KL(π‖π_ref) over the whole vocabulary, in nats per token.</param>
/// <param name="FollowsRule">Share of greedy answers that are the correct letter followed by the end-of-turn marker.</param>
/// <param name="AnswersOtherEnd">Share of greedy answers that are the letter at the other end of the word (the SFT data's wrong half).</param>
public sealed record Measurement(
    int Step, double RewardAccuracy, double RewardMargin, double ChosenLogProb, double RejectedLogProb,
    double PrefersChosen, double KlFromReference, double FollowsRule, double AnswersOtherEnd);
