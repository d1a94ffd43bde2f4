using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss.Tests.CrossEntropy;

/// <summary>Every kind of bad input is an <see cref="ArgumentException"/> whose message names the problem.</summary>
public class BadInputTests
{
    private static void AssertRejected(Action action, params string[] mentions)
    {
        var error = Assert.ThrowsAny<ArgumentException>(action);
        foreach (string mention in mentions)
            Assert.Contains(mention, error.Message);
    }

    [Theory]
    [InlineData(-0.1)]
    [InlineData(1.0)]
    [InlineData(1.5)]
    [InlineData(double.NaN)]
    public void LabelSmoothingOutsideZeroToOne(double epsilon)
    {
        AssertRejected(() => new TokenCrossEntropy(new CrossEntropyOptions { LabelSmoothing = epsilon }), "LabelSmoothing", "[0, 1)");
        AssertRejected(() => new TokenCrossEntropy(new CrossEntropyOptions { Causal = true, LabelSmoothing = epsilon }), "LabelSmoothing", "[0, 1)");
    }

    [Theory]
    [InlineData(-1e-4)]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    public void NegativeOrNonFiniteZLossWeight(double weight) =>
        AssertRejected(() => new TokenCrossEntropy(new CrossEntropyOptions { ZLossWeight = weight }), "ZLossWeight");

    [Fact]
    public void LogitsAndTargetShapesDisagree()
    {
        using var scope = NewDisposeScope();
        using var loss = new TokenCrossEntropy();
        AssertRejected(() => loss.forward(zeros(2, 3, 5), zeros(2, 4, ScalarType.Int64)), "[2, 4]", "[2, 3, 5]", "[2, 3]");
        // Torch's layout (classes in dim 1) is caught too, instead of being read as 5 classes.
        AssertRejected(() => loss.forward(zeros(2, 5, 3), zeros(2, 3, ScalarType.Int64)), "[2, 3]", "[2, 5, 3]");
    }

    [Fact]
    public void TorchsClassesInDimOneLayoutSaysToTranspose()
    {
        using var scope = NewDisposeScope();
        const string advice = "classes are the last dimension; transpose your logits";
        using var loss = new TokenCrossEntropy();
        // [B, C, T] against [B, T], and [B, C, H, W] against [B, H, W], as torch's cross_entropy takes them.
        AssertRejected(() => loss.forward(zeros(2, 7, 5), zeros(2, 5, ScalarType.Int64)), advice, "[2, 5, 7]");
        AssertRejected(() => loss.forward(zeros(2, 7, 3, 4), zeros(2, 3, 4, ScalarType.Int64)), advice, "[2, 3, 4, 7]");
        using var causal = new TokenCrossEntropy(new CrossEntropyOptions { Causal = true });
        AssertRejected(() => causal.forward(zeros(2, 50, 6), zeros(2, 6, ScalarType.Int64)), advice);
        // A plain shape mismatch gets no layout advice.
        var other = Assert.Throws<ArgumentException>(() => loss.forward(zeros(2, 3, 5), zeros(2, 4, ScalarType.Int64)));
        Assert.DoesNotContain("transpose", other.Message);
    }

    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.Float64)]
    [InlineData(ScalarType.Bool)]
    public void NonIntegerTargets(ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        using var loss = new TokenCrossEntropy();
        AssertRejected(() => loss.forward(zeros(4, 3), zeros(new long[] { 4 }, dtype)), "target", "integer", dtype.ToString());
        using var causal = new TokenCrossEntropy(new CrossEntropyOptions { Causal = true });
        AssertRejected(() => causal.forward(zeros(1, 4, 3), zeros(new long[] { 1, 4 }, dtype)), "labels", "integer", dtype.ToString());
        AssertRejected(() => new CrossEntropyOptions { Causal = true }.CountTokens(zeros(new long[] { 1, 4 }, dtype)), "labels", "integer");
    }

    [Fact]
    public void IntegerTargetsOfOtherWidthsAreAccepted()
    {
        using var scope = NewDisposeScope();
        using var loss = new TokenCrossEntropy();
        var logits = randn(3, 4);
        var expected = loss.forward(logits, tensor(new long[] { 0, 3, 1 })).item<float>();
        Assert.Equal(expected, loss.forward(logits, tensor(new[] { 0, 3, 1 })).item<float>());
    }

    [Theory]
    [InlineData(5L)]
    [InlineData(-1L)]
    [InlineData(-101L)]
    public void TargetsOutsideTheClasses(long bad)
    {
        using var scope = NewDisposeScope();
        using var loss = new TokenCrossEntropy();
        var target = tensor(new long[,] { { 0, -100, 4 }, { 1, bad, 2 } });
        AssertRejected(() => loss.forward(zeros(2, 3, 5), target), "target", bad.ToString(), "[1, 1]", "[0, 5)", "-100");
    }

    [Fact]
    public void TargetsOutsideTheClassesAreRejectedBySumAndNoneReductionsAndWithSmoothing()
    {
        using var scope = NewDisposeScope();
        foreach (var options in new[]
        {
            new CrossEntropyOptions { Reduction = nn.Reduction.Sum },
            new CrossEntropyOptions { Reduction = nn.Reduction.None, LabelSmoothing = 0.9, Smoothing = SmoothingKind.OtherClasses },
        })
        {
            using var loss = new TokenCrossEntropy(options);
            AssertRejected(() => loss.forward(zeros(2, 3), tensor(new long[] { 0, 3 })), "3", "[0, 3)");
        }
    }

    [Fact]
    public void CausalLabelsOutsideTheVocabularyNameTheLabelsOwnIndex()
    {
        using var scope = NewDisposeScope();
        using var loss = new TokenCrossEntropy(new CrossEntropyOptions { Causal = true });
        var labels = tensor(new long[,] { { 0, 1, 2, 3 }, { 1, 2, 7, 0 } });
        AssertRejected(() => loss.forward(zeros(2, 4, 4), labels), "labels", "7", "[1, 2]", "[0, 4)");
    }

    [Fact]
    public void OtherClassesSmoothingWithOneClass()
    {
        using var scope = NewDisposeScope();
        var options = new CrossEntropyOptions { LabelSmoothing = 0.1, Smoothing = SmoothingKind.OtherClasses };
        using var loss = new TokenCrossEntropy(options);
        AssertRejected(() => loss.forward(zeros(3, 1), zeros(3, ScalarType.Int64)), "OtherClasses", "2 classes", "[3, 1]");
        using var causal = new TokenCrossEntropy(options with { Causal = true });
        AssertRejected(() => causal.forward(zeros(1, 3, 1), zeros(1, 3, ScalarType.Int64)), "OtherClasses", "2 classes", "[1, 3, 1]");
    }

    [Fact]
    public void MaskOfTheWrongShape()
    {
        using var scope = NewDisposeScope();
        using var loss = new TokenCrossEntropy();
        AssertRejected(() => loss.Compute(zeros(2, 3, 4), zeros(2, 3, ScalarType.Int64), ones(3, 2, ScalarType.Bool)), "lossMask", "[3, 2]", "[2, 3]");
        using var causal = new TokenCrossEntropy(new CrossEntropyOptions { Causal = true });
        AssertRejected(() => causal.Compute(zeros(2, 3, 4), zeros(2, 3, ScalarType.Int64), ones(2, 2, ScalarType.Bool)), "lossMask", "[2, 2]", "[2, 3]");
        AssertRejected(() => new CrossEntropyOptions { Causal = true }.CountTokens(zeros(2, 3, ScalarType.Int64), ones(2, 4, ScalarType.Bool)), "lossMask", "[2, 4]", "[2, 3]");
    }

    [Theory]
    [InlineData(ScalarType.Int64)]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.Byte)]
    public void MaskOfTheWrongDtype(ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        using var loss = new TokenCrossEntropy();
        AssertRejected(() => loss.Compute(zeros(2, 3, 4), zeros(2, 3, ScalarType.Int64), ones(new long[] { 2, 3 }, dtype)), "lossMask", "bool", dtype.ToString());
        using var causal = new TokenCrossEntropy(new CrossEntropyOptions { Causal = true });
        AssertRejected(() => causal.Compute(zeros(2, 3, 4), zeros(2, 3, ScalarType.Int64), ones(new long[] { 2, 3 }, dtype)), "lossMask", "bool", dtype.ToString());
    }

    [Fact]
    public void CausalLabelsShorterThanTwoTokens()
    {
        using var scope = NewDisposeScope();
        using var loss = new TokenCrossEntropy(new CrossEntropyOptions { Causal = true });
        AssertRejected(() => loss.forward(zeros(3, 1, 5), zeros(3, 1, ScalarType.Int64)), "labels", "at least 2 tokens", "[3, 1]");
    }

    [Fact]
    public void CausalLogitsOrLabelsOfTheWrongRank()
    {
        using var scope = NewDisposeScope();
        using var loss = new TokenCrossEntropy(new CrossEntropyOptions { Causal = true });
        AssertRejected(() => loss.forward(zeros(4, 5), zeros(4, ScalarType.Int64)), "logits", "[B, T, V]", "[4, 5]");
        AssertRejected(() => loss.forward(zeros(2, 4, 5), zeros(8, ScalarType.Int64)), "labels", "[8]", "[2, 4, 5]");
        AssertRejected(() => new CrossEntropyOptions { Causal = true }.CountTokens(zeros(8, ScalarType.Int64)), "labels", "[B, T]", "[8]");
    }

    [Fact]
    public void NonFloatingPointLogits()
    {
        using var scope = NewDisposeScope();
        using var loss = new TokenCrossEntropy();
        AssertRejected(() => loss.forward(zeros(new long[] { 2, 3 }, ScalarType.Int64), zeros(2, ScalarType.Int64)), "logits", "floating-point", "Int64");
    }

    [Theory]
    [InlineData(0L)]
    [InlineData(-3L)]
    public void NonPositiveNormalizer(long normalizer)
    {
        using var scope = NewDisposeScope();
        using var loss = new TokenCrossEntropy(new CrossEntropyOptions { Causal = true });
        AssertRejected(() => loss.Compute(zeros(1, 3, 4), zeros(1, 3, ScalarType.Int64), normalizer: normalizer), "normalizer", normalizer.ToString());
    }

    [Fact]
    public void NormalizerWithReductionNone()
    {
        using var scope = NewDisposeScope();
        using var loss = new TokenCrossEntropy(new CrossEntropyOptions { Reduction = nn.Reduction.None });
        AssertRejected(() => loss.Compute(zeros(3, 4), zeros(3, ScalarType.Int64), normalizer: 3), "normalizer", "Reduction.None");
    }
}
