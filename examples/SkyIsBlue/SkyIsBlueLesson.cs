using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TorchLoss.Examples.SkyIsBlue;

/// <summary>
/// The lesson's worked example: a model completes "Sky is ___" with one of three words, and we follow its
/// logits through softmax, log and negative log-likelihood to the cross-entropy, then through label
/// smoothing, the entropy/KL decomposition, and a comparison with mean squared error. Everything is
/// computed in float64 so the printed digits are exact.
/// </summary>
public static class SkyIsBlueLesson
{
    /// <summary>The prompt the model completes.</summary>
    public const string Prompt = "Sky is ___";

    /// <summary>Index of the correct word, "blue".</summary>
    public const int Blue = 1;

    /// <summary>The label-smoothing ε of the lesson.</summary>
    public const double Epsilon = 0.1;

    /// <summary>The model's vocabulary for this prompt.</summary>
    public static IReadOnlyList<string> Words { get; } = ["red", "blue", "green"];

    /// <summary>The lesson's logits for (red, blue, green).</summary>
    public static IReadOnlyList<double> Logits { get; } = [2.0, 4.5, 1.0];

    /// <summary>Logits of a model that is sure the sky is red: the case where MSE fails to teach.</summary>
    public static IReadOnlyList<double> ConfidentlyWrongLogits { get; } = [8.0, 1.0, 2.0];

    /// <summary>Computes every number of the lesson.</summary>
    public static SkyIsBlueResult Run()
    {
        TorchBackend.EnsureLoaded();
        using var scope = NewDisposeScope();
        var logits = tensor(Logits.ToArray());
        var target = tensor(new long[] { Blue });

        // By hand: softmax turns scores into probabilities, the log of the true word's probability is its
        // log-likelihood, and the loss is its negative.
        var exp = logits.exp();
        var probabilities = exp / exp.sum();
        var logProbabilities = probabilities.log();
        double nllByHand = -logProbabilities[Blue].item<double>();

        // TorchSharp wants a batch: [1, 3] logits and [1] targets.
        double torchSharp = F.cross_entropy(logits.unsqueeze(0), target).item<double>();
        double tokenCrossEntropy;
        using (var loss = new TokenCrossEntropy())
            tokenCrossEntropy = loss.forward(logits.unsqueeze(0), target).item<double>();

        return new SkyIsBlueResult(
            Probabilities: Values(probabilities),
            LogProbabilities: Values(logProbabilities),
            NllByHand: nllByHand,
            TorchSharpCrossEntropy: torchSharp,
            TokenCrossEntropy: tokenCrossEntropy,
            Perplexity: Math.Exp(tokenCrossEntropy),
            Targets:
            [
                Decompose("one-hot", logits, new CrossEntropyOptions()),
                Decompose($"Uniform ε={Epsilon}", logits, new CrossEntropyOptions { LabelSmoothing = Epsilon }),
                Decompose($"OtherClasses ε={Epsilon}", logits, new CrossEntropyOptions { LabelSmoothing = Epsilon, Smoothing = SmoothingKind.OtherClasses }),
            ],
            Gradients:
            [
                CompareGradients("the lesson's model", Logits),
                CompareGradients("a model sure the sky is red", ConfidentlyWrongLogits),
            ]);
    }

    /// <summary>The target distribution a smoothing convention makes of "blue", written out from its definition.</summary>
    public static double[] TargetDistribution(CrossEntropyOptions options)
    {
        int classes = Words.Count;
        double epsilon = options.LabelSmoothing;
        return Enumerable.Range(0, classes).Select(c => options.Smoothing == SmoothingKind.Uniform
                ? (c == Blue ? 1 - epsilon : 0) + epsilon / classes
                : c == Blue ? 1 - epsilon : epsilon / (classes - 1))
            .ToArray();
    }

    private static TargetBreakdown Decompose(string name, Tensor logits, CrossEntropyOptions options)
    {
        using var scope = NewDisposeScope();
        double[] distribution = TargetDistribution(options);
        double loss;
        using (var module = new TokenCrossEntropy(options))
            loss = module.forward(logits.unsqueeze(0), tensor(new long[] { Blue })).item<double>();

        // InformationTheory takes logits; the log of a distribution is a valid set of logits (log 0 = −∞ is fine).
        var targetLogits = tensor(distribution).log();
        return new TargetBreakdown(
            name,
            distribution,
            loss,
            Entropy: InformationTheory.Entropy(targetLogits).item<double>(),
            KlDivergence: InformationTheory.KlDivergence(targetLogits, logits).item<double>());
    }

    private static GradientComparison CompareGradients(string name, IReadOnlyList<double> values)
    {
        using var scope = NewDisposeScope();
        var oneHot = F.one_hot(tensor(new long[] { Blue }), Words.Count).squeeze(0).to(ScalarType.Float64);

        var forCrossEntropy = tensor(values.ToArray()).requires_grad_(true);
        var crossEntropy = F.cross_entropy(forCrossEntropy.unsqueeze(0), tensor(new long[] { Blue }));
        crossEntropy.backward();

        // MSE between the predicted distribution and the one-hot target, as a "regression" on probabilities.
        var forMse = tensor(values.ToArray()).requires_grad_(true);
        var probabilities = F.softmax(forMse, 0);
        var mse = (probabilities - oneHot).square().sum();
        mse.backward();

        return new GradientComparison(
            name,
            values.ToArray(),
            Values(probabilities),
            CrossEntropy: crossEntropy.item<double>(),
            CrossEntropyGradient: Values(forCrossEntropy.grad!),
            Mse: mse.item<double>(),
            MseGradient: Values(forMse.grad!));
    }

    private static double[] Values(Tensor t) => t.detach().to(ScalarType.Float64).data<double>().ToArray();
}
