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
        CrossEntropyInput.CheckLogits(logits, nameof(logits));
        using var scope = NewDisposeScope();
        var logP = F.log_softmax(logits, -1);
        return PlogQ(logP, logP).neg().MoveToOuterDisposeScope();
    }

    /// <summary>KL(p‖q) = Σ p (log p − log q) over the last dimension.</summary>
    public static Tensor KlDivergence(Tensor pLogits, Tensor qLogits)
    {
        CheckPair(pLogits, qLogits);
        using var scope = NewDisposeScope();
        var logP = F.log_softmax(pLogits, -1);
        var logQ = F.log_softmax(qLogits, -1);
        return (PlogQ(logP, logP) - PlogQ(logP, logQ)).MoveToOuterDisposeScope();
    }

    /// <summary>CE(p, q) = −Σ p log q over the last dimension: the expected surprise of q when the truth is p.</summary>
    public static Tensor CrossEntropy(Tensor pLogits, Tensor qLogits)
    {
        CheckPair(pLogits, qLogits);
        using var scope = NewDisposeScope();
        var logP = F.log_softmax(pLogits, -1);
        var logQ = F.log_softmax(qLogits, -1);
        return PlogQ(logP, logQ).neg().MoveToOuterDisposeScope();
    }

    // Σ p·log q with 0·log 0 = 0, so one-hot targets (logits of −∞) are fine.
    private static Tensor PlogQ(Tensor logP, Tensor logQ)
    {
        var p = logP.exp();
        var terms = p * logQ;
        return where(p.gt(0), terms, zeros_like(terms)).sum(-1);
    }

    private static void CheckPair(Tensor pLogits, Tensor qLogits)
    {
        CrossEntropyInput.CheckLogits(pLogits, nameof(pLogits));
        CrossEntropyInput.CheckLogits(qLogits, nameof(qLogits));
        if (!pLogits.shape.SequenceEqual(qLogits.shape))
            throw new ArgumentException($"pLogits shape {CrossEntropyInput.Shape(pLogits)} does not match qLogits shape {CrossEntropyInput.Shape(qLogits)}.", nameof(qLogits));
    }
}
