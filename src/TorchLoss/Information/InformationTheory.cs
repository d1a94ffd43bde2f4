using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TorchLoss;

/// <summary>
/// Entropy, KL divergence and cross-entropy of distributions given as logits over the last dimension,
/// in nats. They satisfy CE(p, q) = H(p) + KL(p‖q): minimising cross-entropy against a fixed target p
/// minimises the KL divergence, and a loss against a smoothed target can never fall below H(p).
/// </summary>
public static class InformationTheory
{
    /// <summary>H(p) = −Σ p log p over the last dimension of <paramref name="logits"/>.</summary>
    public static Tensor Entropy(Tensor logits)
    {
        InputChecks.CheckLogits(logits, nameof(logits));
        using var scope = NewDisposeScope();
        var logP = F.log_softmax(logits, -1);
        return RelativeEntropy.Sum(logP.exp(), logP, RelativeEntropy.Zero(logP)).neg().MoveToOuterDisposeScope();
    }

    /// <summary>KL(p‖q) = Σ p (log p − log q) over the last dimension.</summary>
    public static Tensor KlDivergence(Tensor pLogits, Tensor qLogits)
    {
        CheckPair(pLogits, qLogits);
        using var scope = NewDisposeScope();
        var logP = F.log_softmax(pLogits, -1);
        var logQ = F.log_softmax(qLogits, -1);
        return RelativeEntropy.Sum(logP.exp(), logP, logQ).MoveToOuterDisposeScope();
    }

    /// <summary>CE(p, q) = −Σ p log q over the last dimension: the expected surprise of q when the truth is p.</summary>
    public static Tensor CrossEntropy(Tensor pLogits, Tensor qLogits)
    {
        CheckPair(pLogits, qLogits);
        using var scope = NewDisposeScope();
        var logP = F.log_softmax(pLogits, -1);
        var logQ = F.log_softmax(qLogits, -1);
        return RelativeEntropy.Sum(logP.exp(), RelativeEntropy.Zero(logP), logQ).MoveToOuterDisposeScope();
    }

    private static void CheckPair(Tensor pLogits, Tensor qLogits)
    {
        InputChecks.CheckLogits(pLogits, nameof(pLogits));
        InputChecks.CheckLogits(qLogits, nameof(qLogits));
        InputChecks.CheckSameShape(pLogits, nameof(pLogits), qLogits, nameof(qLogits), "both must describe the same distributions");
        InputChecks.CheckSameDevice(qLogits, nameof(qLogits), pLogits, nameof(pLogits));
    }
}
