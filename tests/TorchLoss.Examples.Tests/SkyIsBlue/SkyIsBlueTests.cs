using TorchLoss.Examples.SkyIsBlue;

namespace TorchLoss.Examples.Tests.SkyIsBlue;

/// <summary>The lesson's key numbers, as <see cref="SkyIsBlueLesson"/> computes them.</summary>
public class SkyIsBlueTests
{
    private static readonly SkyIsBlueResult Lesson = SkyIsBlueLesson.Run();

    [Fact]
    public void SoftmaxOfTheLessonsLogits()
    {
        Assert.Equal(0.0738, Lesson.Probabilities[0], 4);
        Assert.Equal(0.8991, Lesson.Probabilities[1], 4);
        Assert.Equal(0.0271, Lesson.Probabilities[2], 4);
        Assert.Equal(1.0, Lesson.Probabilities.Sum(), 12);
        Assert.Equal(Math.Log(Lesson.Probabilities[1]), Lesson.LogProbabilities[1], 12);
    }

    [Fact]
    public void CrossEntropyThreeWaysAndPerplexity()
    {
        Assert.Equal(0.1064, Lesson.NllByHand, 4);
        Assert.Equal(Lesson.NllByHand, Lesson.TorchSharpCrossEntropy, 12);
        Assert.Equal(Lesson.NllByHand, Lesson.TokenCrossEntropy, 12);
        Assert.Equal(1.112, Lesson.Perplexity, 3);
    }

    [Fact]
    public void LabelSmoothingInBothConventions()
    {
        Assert.Equal(3, Lesson.Targets.Count);
        var (oneHot, uniform, otherClasses) = (Lesson.Targets[0], Lesson.Targets[1], Lesson.Targets[2]);

        Assert.Equal([0.0, 1.0, 0.0], oneHot.Distribution);
        Assert.Equal(0.1064, oneHot.Loss, 4);
        AssertDistribution([0.0333, 0.9333, 0.0333], uniform.Distribution);
        Assert.Equal(0.3064, uniform.Loss, 4);
        AssertDistribution([0.05, 0.9, 0.05], otherClasses.Distribution);
        Assert.Equal(0.4064, otherClasses.Loss, 4);
    }

    [Fact]
    public void EveryLossIsEntropyPlusKlDivergence()
    {
        foreach (var target in Lesson.Targets)
        {
            Assert.Equal(target.Loss, target.Entropy + target.KlDivergence, 12);
            Assert.True(target.KlDivergence > 0, target.Name);
        }
        Assert.Equal(0.0, Lesson.Targets[0].Entropy, 12);
        Assert.True(Lesson.Targets[2].Entropy > Lesson.Targets[1].Entropy); // OtherClasses moves more mass off "blue"
    }

    [Fact]
    public void CrossEntropyGradientIsPMinusY()
    {
        foreach (var g in Lesson.Gradients)
        {
            for (int i = 0; i < 3; i++)
                Assert.Equal(g.Probabilities[i] - (i == SkyIsBlueLesson.Blue ? 1 : 0), g.CrossEntropyGradient[i], 12);
        }
    }

    [Fact]
    public void MseGradientMatchesTheSoftmaxChainRuleAndVanishesWhenConfidentlyWrong()
    {
        foreach (var g in Lesson.Gradients)
        {
            // d/dz_j Σ_i (p_i − y_i)² = Σ_i 2 (p_i − y_i) p_i (δ_ij − p_j)
            double[] p = g.Probabilities;
            for (int j = 0; j < 3; j++)
            {
                double expected = Enumerable.Range(0, 3).Sum(i =>
                    2 * (p[i] - (i == SkyIsBlueLesson.Blue ? 1 : 0)) * p[i] * ((i == j ? 1 : 0) - p[j]));
                Assert.Equal(expected, g.MseGradient[j], 12);
            }
        }

        var wrong = Lesson.Gradients[1];
        Assert.True(wrong.Probabilities[0] > 0.99, "the second model should be confidently wrong");
        double ceOnBlue = wrong.CrossEntropyGradient[SkyIsBlueLesson.Blue], mseOnBlue = wrong.MseGradient[SkyIsBlueLesson.Blue];
        Assert.True(ceOnBlue < -0.99, $"cross-entropy's push on blue: {ceOnBlue}");
        Assert.True(Math.Abs(mseOnBlue) < 0.01, $"MSE's push on blue: {mseOnBlue}");
    }

    private static void AssertDistribution(double[] expected, double[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], actual[i], 4);
        Assert.Equal(1.0, actual.Sum(), 12);
    }
}

/// <summary>Runs the console program itself and reads its table.</summary>
[Collection(ConsoleCollection.Name)]
public class SkyIsBlueProgramTests
{
    [Fact]
    public void PrintsTheLessonsTable()
    {
        var entry = typeof(SkyIsBlueLesson).Assembly.EntryPoint!;
        var output = new StringWriter();
        var original = Console.Out;
        Console.SetOut(output);
        try { entry.Invoke(null, entry.GetParameters().Length == 0 ? null : [Array.Empty<string>()]); }
        finally { Console.SetOut(original); }

        string text = output.ToString();
        foreach (string expected in new[] { "0.1064", "1.112", "0.3064", "0.4064", "(0.0333, 0.9333, 0.0333)", "(0.0500, 0.9000, 0.0500)", "MSE gradient" })
            Assert.Contains(expected, text);
    }
}
