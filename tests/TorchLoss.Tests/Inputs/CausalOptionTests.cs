using TorchLoss.Metrics;
using TorchSharp;
using static TorchLoss.Tests.TestTensors;
using static TorchSharp.torch;

namespace TorchLoss.Tests.Inputs;

/// <summary>
/// One way to say causal: <c>Causal = true</c> in the options of every family that scores next tokens means unshifted
/// labels [B, T] and a mask aligned with them, and counts the same tokens everywhere; the superseded spellings still work.
/// </summary>
public class CausalOptionTests
{
    private static readonly CrossEntropyOptions Causal = new() { Causal = true, LabelSmoothing = 0.1 };

    [Fact]
    public void Causal_cross_entropy_equals_the_aligned_loss_on_shifted_slices()
    {
        using var scope = NewDisposeScope();
        var logits = Logits([3, 7, 11], ScalarType.Float64, seed: 3);
        var labels = Targets([3, 7], 11, seed: 4, ignoreFraction: 0.2);
        var mask = rand([3, 7], generator: new Generator(5)).gt(0.3);
        var aligned = logits.detach().clone().requires_grad_(true);
        using var causal = new TokenCrossEntropy(Causal);
        using var plain = new TokenCrossEntropy(Causal with { Causal = false });

        using var ours = causal.Compute(logits, labels, mask);
        using var theirs = plain.Compute(aligned[.., ..^1], labels[.., 1..], mask[.., 1..]);

        AssertClose(theirs.Loss, ours.Loss, 1e-12);
        Assert.Equal(Scalar(theirs.TokenCount), Scalar(ours.TokenCount));
        Assert.Equal(Causal.CountTokens(labels, mask), (long)Scalar(ours.TokenCount));
        ours.Loss.backward();
        theirs.Loss.backward();
        AssertClose(aligned.grad!, logits.grad!, 1e-12, "gradient");
    }

#pragma warning disable CS0618 // CausalLMLoss is obsolete: this test keeps it working for existing code
    [Fact]
    public void The_superseded_causal_module_and_token_count_give_the_same_results()
    {
        using var scope = NewDisposeScope();
        var logits = Logits([2, 6, 9], ScalarType.Float32, seed: 6);
        var labels = Targets([2, 6], 9, seed: 7, ignoreFraction: 0.2);
        using var current = new TokenCrossEntropy(Causal);
        using var legacy = new CausalLMLoss(Causal with { Causal = false });   // causal whatever the options say

        Assert.True(legacy.Options.Causal);
        AssertClose(current.forward(logits, labels), legacy.forward(logits, labels), 0);
        Assert.Equal(Causal.CountTokens(labels), CausalLMLoss.CountTokens(labels));
    }
#pragma warning restore CS0618

    [Fact]
    public void The_chunked_head_takes_causal_from_its_options_and_from_the_superseded_flag()
    {
        using var scope = NewDisposeScope();
        var hidden = Logits([2, 5, 4], ScalarType.Float64, seed: 8);
        var weight = Logits([10, 4], ScalarType.Float64, seed: 9);
        var labels = Targets([2, 5], 10, seed: 10, ignoreFraction: 0.2);
        using var fromOptions = new ChunkedLinearCrossEntropy(Causal, chunkSize: 3);
        using var fromFlag = new ChunkedLinearCrossEntropy(Causal with { Causal = false }, chunkSize: 3, causal: true);
        using var full = new TokenCrossEntropy(Causal);

        Assert.True(fromOptions.Causal);
        Assert.True(fromFlag.Options.Causal);
        var expected = full.forward(nn.functional.linear(hidden, weight), labels);
        AssertClose(expected, fromOptions.forward(hidden, weight, labels), 1e-12);
        AssertClose(expected, fromFlag.forward(hidden, weight, labels), 1e-12);
    }

    [Theory]
    [InlineData(DistillationBackend.LibTorch)]
    [InlineData(DistillationBackend.Fused)]
    public void Causal_distillation_takes_the_token_mask_the_causal_loss_takes(DistillationBackend backend)
    {
        using var scope = NewDisposeScope();
        var student = Logits([3, 6, 8], ScalarType.Float32, seed: 11);
        var teacher = Logits([3, 6, 8], ScalarType.Float32, seed: 12);
        var tokenMask = rand([3, 6], generator: new Generator(13)).gt(0.4);   // e.g. an SFT assistant mask: true = learned token
        // What users had to build by hand: position t counts when token t+1 is learned; the last position never.
        var positionMask = cat([tokenMask[.., 1..], zeros([3, 1], ScalarType.Bool)], 1);
        using var causal = new DistillationLoss(new DistillationOptions { Causal = true, Backend = backend });
        using var plain = new DistillationLoss(new DistillationOptions { Backend = backend });

        using var ours = causal.Compute(student, teacher, tokenMask);
        using var theirs = plain.Compute(student, teacher, positionMask);

        AssertClose(theirs.Loss, ours.Loss, 0);
        Assert.Equal(Scalar(theirs.PositionCount), Scalar(ours.PositionCount));
        Assert.Equal(new CrossEntropyOptions { Causal = true }.CountTokens(tokenMask.to(ScalarType.Int64), tokenMask), (long)Scalar(ours.PositionCount));
        // Without a mask every position but the last counts.
        using var unmasked = causal.Compute(student, teacher);
        Assert.Equal(3 * 5, (long)Scalar(unmasked.PositionCount));
    }

    [Fact]
    public void Causal_calibration_counts_the_tokens_the_causal_loss_counts()
    {
        using var scope = NewDisposeScope();
        var logits = Logits([2, 7, 5], ScalarType.Float32, seed: 14);
        var labels = Targets([2, 7], 5, seed: 15, ignoreFraction: 0.3);
        using var tracker = new CalibrationTracker(new CalibrationOptions { Causal = true });
        tracker.Update(logits, labels);
        Assert.Equal(Causal.CountTokens(labels), tracker.Snapshot().Tokens);
    }

    [Fact]
    public void Causal_inputs_that_are_not_sequences_are_rejected_with_the_expected_shape()
    {
        using var scope = NewDisposeScope();
        using var loss = new TokenCrossEntropy(Causal);
        using var distill = new DistillationLoss(new DistillationOptions { Causal = true });
        using var head = new ChunkedLinearCrossEntropy(Causal);
        using var tracker = new CalibrationTracker(new CalibrationOptions { Causal = true });
        var flat = randn(6, 5);

        Assert.Contains("[B, T, V]", Assert.Throws<ArgumentException>(() => loss.forward(flat, zeros(6, ScalarType.Int64))).Message);
        Assert.Contains("[B, T, V]", Assert.Throws<ArgumentException>(() => distill.forward(flat, flat)).Message);
        Assert.Contains("[B, T, d]", Assert.Throws<ArgumentException>(() => head.forward(flat, randn(5, 5), zeros(6, ScalarType.Int64))).Message);
        Assert.Contains("[B, T, V]", Assert.Throws<ArgumentException>(() => tracker.Update(flat, zeros(6, ScalarType.Int64))).Message);
        Assert.Contains("[B, T]", Assert.Throws<ArgumentException>(() => Causal.CountTokens(zeros(6, ScalarType.Int64))).Message);
    }

    [Fact]
    public void Every_family_defaults_to_the_one_ignore_index()
    {
        Assert.Equal(-100, LossDefaults.IgnoreIndex);
        Assert.Equal(LossDefaults.IgnoreIndex, CrossEntropyOptions.Default.IgnoreIndex);
        Assert.Equal(LossDefaults.IgnoreIndex, CalibrationOptions.Default.IgnoreIndex);
    }
}
