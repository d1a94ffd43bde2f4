using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TorchLoss;

/// <summary>The per-pair formulas of <see cref="PreferenceLossKind"/>, in float64, on per-sequence scores.</summary>
internal static class PreferenceComputation
{
    /// <summary>
    /// The loss of every pair [B] and the rewards, from the policy's scores <paramref name="chosen"/>, <paramref name="rejected"/>
    /// (float64, differentiable) and the reference's (float64, detached; null for the reference-free kinds).
    /// </summary>
    public static (Tensor PairLosses, Tensor ChosenRewards, Tensor RejectedRewards) PairLosses(
        Tensor chosen, Tensor rejected, Tensor? referenceChosen, Tensor? referenceRejected, PreferenceOptions options)
    {
        double beta = options.Beta;
        double e = options.LabelSmoothing;
        if (!options.NeedsReference)
        {
            var losses = options.Loss == PreferenceLossKind.SimPo
                ? -F.logsigmoid(beta * (chosen - rejected) - options.ResolvedGamma) - options.ResolvedAlpha * chosen
                : -chosen - options.ResolvedLambda * F.logsigmoid(LogOdds(chosen) - LogOdds(rejected));
            return (losses, beta * chosen, beta * rejected);
        }
        var chosenRatio = chosen - referenceChosen!;
        var rejectedRatio = rejected - referenceRejected!;
        var h = chosenRatio - rejectedRatio;
        var pairLosses = options.Loss switch
        {
            PreferenceLossKind.Dpo => e == 0 ? -F.logsigmoid(beta * h) : -(1 - e) * F.logsigmoid(beta * h) - e * F.logsigmoid(-beta * h),
            PreferenceLossKind.Hinge => F.relu(1 - beta * h),
            PreferenceLossKind.Ipo => (h - 1 / (2 * beta)).square(),
            PreferenceLossKind.RobustDpo => ((1 - e) * -F.logsigmoid(beta * h) + e * F.logsigmoid(-beta * h)) / (1 - 2 * e),
            _ => throw new ArgumentOutOfRangeException(nameof(options), options.Loss, "Unknown preference loss."),
        };
        return (pairLosses, beta * chosenRatio, beta * rejectedRatio);
    }

    /// <summary>
    /// log(p / (1 − p)) for p = e^m, m ≤ 0 a mean log-probability: m − log(1 − e^m), where log(1 − e^m) is log(−expm1(m))
    /// near 0 and log1p(−e^m) below −ln 2 (each is accurate where the other cancels). m is capped just below 0 so a
    /// sequence whose probability rounds to 1 keeps finite odds instead of giving ∞ − ∞.
    /// </summary>
    public static Tensor LogOdds(Tensor meanLogProb)
    {
        var m = meanLogProb.clamp_max(-1e-30);
        var nearZero = m.gt(-Math.Log(2));
        // Each branch is fed only values where it is finite, so neither sends NaN through the other's gradient.
        var safeNear = where(nearZero, m, full_like(m, -1.0));
        var safeFar = where(nearZero, full_like(m, -1.0), m);
        var log1mExp = where(nearZero, safeNear.expm1().neg().log(), safeFar.exp().neg().log1p());
        return m - log1mExp;
    }
}
