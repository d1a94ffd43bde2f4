namespace TorchLoss.Examples.SkyIsBlue;

/// <summary>Every number of the lesson; see <see cref="SkyIsBlueLesson.Run"/>.</summary>
/// <param name="Probabilities">softmax(logits) over (red, blue, green).</param>
/// <param name="LogProbabilities">log of <paramref name="Probabilities"/>.</param>
/// <param name="NllByHand">−log p(blue), from the two lines above.</param>
/// <param name="TorchSharpCrossEntropy">TorchSharp's <c>functional.cross_entropy</c>.</param>
/// <param name="TokenCrossEntropy">TorchLoss's <see cref="TorchLoss.TokenCrossEntropy"/>.</param>
/// <param name="Perplexity">exp(cross-entropy): the model is as unsure as a fair choice among this many words.</param>
/// <param name="Targets">The one-hot target and both smoothing conventions, each with its loss, entropy and KL divergence.</param>
/// <param name="Gradients">Cross-entropy's and MSE's gradients for the lesson's model and a confidently wrong one.</param>
public sealed record SkyIsBlueResult(
    double[] Probabilities,
    double[] LogProbabilities,
    double NllByHand,
    double TorchSharpCrossEntropy,
    double TokenCrossEntropy,
    double Perplexity,
    IReadOnlyList<TargetBreakdown> Targets,
    IReadOnlyList<GradientComparison> Gradients);

/// <summary>A target distribution for "blue" and the loss against it, split as CE = H(target) + KL(target‖model).</summary>
/// <param name="Name">Which target.</param>
/// <param name="Distribution">The target probabilities of (red, blue, green).</param>
/// <param name="Loss">The cross-entropy loss TorchLoss computes with this target's options.</param>
/// <param name="Entropy">H(target): the floor no model can go below.</param>
/// <param name="KlDivergence">KL(target‖model): what training can still remove.</param>
public sealed record TargetBreakdown(string Name, double[] Distribution, double Loss, double Entropy, double KlDivergence);

/// <summary>The gradients with respect to the logits that cross-entropy and MSE-on-softmax give for one prediction.</summary>
/// <param name="Name">Which model.</param>
/// <param name="Logits">Its logits for (red, blue, green).</param>
/// <param name="Probabilities">softmax of <paramref name="Logits"/>.</param>
/// <param name="CrossEntropy">Its cross-entropy loss.</param>
/// <param name="CrossEntropyGradient">d loss / d logits for cross-entropy: p − y.</param>
/// <param name="Mse">Σ (p − y)².</param>
/// <param name="MseGradient">d MSE / d logits.</param>
public sealed record GradientComparison(
    string Name,
    double[] Logits,
    double[] Probabilities,
    double CrossEntropy,
    double[] CrossEntropyGradient,
    double Mse,
    double[] MseGradient);
