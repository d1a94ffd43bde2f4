using TorchSharp;
using static TorchSharp.torch;
using static TorchLoss.Tests.TestTensors;
using F = TorchSharp.torch.nn.functional;

namespace TorchLoss.Tests.Distillation;

/// <summary><see cref="DistillationLoss"/> against torch's own operators, by finite differences, and on its edge cases.</summary>
public class DistillationLossTests
{
    public static TheoryData<DistillationDivergence, double, nn.Reduction, DistillationBackend> ParityCases()
    {
        var data = new TheoryData<DistillationDivergence, double, nn.Reduction, DistillationBackend>();
        foreach (var reduction in new[] { nn.Reduction.Mean, nn.Reduction.Sum, nn.Reduction.None })
        foreach (double tau in new[] { 1.0, 2.5 })
        {
            data.Add(DistillationDivergence.Forward, tau, reduction, DistillationBackend.LibTorch);
            data.Add(DistillationDivergence.Forward, tau, reduction, DistillationBackend.Fused);
            data.Add(DistillationDivergence.Reverse, tau, reduction, DistillationBackend.LibTorch);
            data.Add(DistillationDivergence.JensenShannon, tau, reduction, DistillationBackend.LibTorch);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(ParityCases))]
    public void Matches_torch_kl_div_for_every_divergence_temperature_and_reduction(DistillationDivergence divergence, double tau, nn.Reduction reduction, DistillationBackend backend)
    {
        using var scope = NewDisposeScope();
        var student = Logits([2, 5, 11], ScalarType.Float64, seed: 1);
        var teacher = Logits([2, 5, 11], ScalarType.Float64, seed: 2).detach();
        var options = new DistillationOptions { Divergence = divergence, Beta = 0.3, Temperature = tau, Reduction = reduction, Backend = backend };
        using var loss = new DistillationLoss(options);

        var actual = loss.forward(student, teacher);
        actual.sum().backward();
        var grad = student.grad!.clone();
        student.grad = null;

        var perPosition = Reference(student, teacher, divergence, 0.3, tau) * (tau * tau);
        var expected = reduction switch
        {
            nn.Reduction.Mean => perPosition.mean(),
            nn.Reduction.Sum => perPosition.sum(),
            _ => perPosition,
        };
        expected.sum().backward();
        AssertClose(expected, actual, 1e-12, "loss");
        AssertClose(student.grad!, grad, 1e-12, "gradient");
    }

    [Theory]
    [InlineData(DistillationDivergence.Forward, DistillationBackend.LibTorch)]
    [InlineData(DistillationDivergence.Forward, DistillationBackend.Fused)]
    [InlineData(DistillationDivergence.Reverse, DistillationBackend.LibTorch)]
    [InlineData(DistillationDivergence.JensenShannon, DistillationBackend.LibTorch)]
    public void Gradient_matches_finite_differences(DistillationDivergence divergence, DistillationBackend backend)
    {
        using var scope = NewDisposeScope();
        var x = Logits([3, 7], ScalarType.Float64, seed: 3).detach();
        var teacher = Logits([3, 7], ScalarType.Float64, seed: 4).detach();
        var mask = tensor(new[] { true, false, true });
        using var loss = new DistillationLoss(new DistillationOptions { Divergence = divergence, Beta = 0.7, Temperature = 1.7, Backend = backend });
        AssertGradientMatchesFiniteDifferences(s => loss.Compute(s, teacher, mask, normalizer: 5).TakeLoss(), x);
    }

    [Theory]
    [InlineData(DistillationDivergence.Forward, DistillationBackend.LibTorch)]
    [InlineData(DistillationDivergence.Forward, DistillationBackend.Fused)]
    [InlineData(DistillationDivergence.Reverse, DistillationBackend.LibTorch)]
    [InlineData(DistillationDivergence.JensenShannon, DistillationBackend.LibTorch)]
    public void Totals_satisfy_cross_entropy_equals_entropy_plus_kl(DistillationDivergence divergence, DistillationBackend backend)
    {
        using var scope = NewDisposeScope();
        var student = Logits([4, 6, 50], ScalarType.Float32, seed: 5);
        var teacher = Logits([4, 6, 50], ScalarType.Float32, seed: 6);
        var mask = rand([4, 6], generator: new Generator(7)).gt(0.3);
        using var loss = new DistillationLoss(new DistillationOptions { Divergence = divergence, Backend = backend });
        using var result = loss.Compute(student, teacher, mask);

        double h = Scalar(result.TeacherEntropySum), ce = Scalar(result.CrossEntropySum), kl = Scalar(result.KlDivergenceSum);
        Assert.Equal(ce, h + kl, 4);
        Assert.True(kl > 0);
        // The same totals as InformationTheory's definitions over the counted positions.
        var counted = mask.reshape(-1);
        Assert.Equal(Sum(InformationTheory.Entropy(teacher), counted), h, 3);
        Assert.Equal(Sum(InformationTheory.CrossEntropy(teacher, student), counted), ce, 3);
        Assert.Equal(Sum(InformationTheory.KlDivergence(teacher, student), counted), kl, 3);
        Assert.Equal(mask.sum().item<long>(), result.PositionCount.item<long>());
        Assert.Equal(ScalarType.Float64, result.CrossEntropySum.dtype);
        if (divergence == DistillationDivergence.Forward)
            Assert.Equal(kl, Scalar(result.DivergenceSum), 6);
        Assert.Equal(Scalar(result.DivergenceSum) / Scalar(result.PositionCount), Scalar(result.Loss), 5);
    }

    [Theory]
    [InlineData(DistillationBackend.LibTorch)]
    [InlineData(DistillationBackend.Fused)]
    public void Mask_and_normalizer_count_only_selected_positions(DistillationBackend backend)
    {
        using var scope = NewDisposeScope();
        var student = Logits([2, 4, 9], ScalarType.Float64, seed: 8);
        var teacher = Logits([2, 4, 9], ScalarType.Float64, seed: 9);
        var mask = tensor(new[] { true, false, true, true, false, false, true, false }).reshape(2, 4);
        using var loss = new DistillationLoss(new DistillationOptions { Temperature = 2, Backend = backend });

        using var result = loss.Compute(student, teacher, mask, normalizer: 10);
        result.Loss.backward();
        var perPosition = Reference(student, teacher, DistillationDivergence.Forward, 0.5, 2) * 4;
        var expected = perPosition.masked_select(mask).sum() / 10;
        AssertClose(expected, result.Loss, 1e-12, "loss");
        Assert.Equal(4, result.PositionCount.item<long>());
        var gradNorms = student.grad!.abs().sum(-1);
        Assert.Equal(0.0, Scalar(gradNorms.masked_select(mask.logical_not()).sum()));
        Assert.True(Scalar(gradNorms.masked_select(mask).min()) > 0);

        using var empty = loss.Compute(student, teacher, zeros([2, 4], ScalarType.Bool));
        Assert.Equal(0.0, Scalar(empty.Loss));
        Assert.True(empty.Loss.requires_grad);
    }

    [Theory]
    [InlineData(DistillationBackend.LibTorch)]
    [InlineData(DistillationBackend.Fused)]
    public void Teacher_gets_no_gradient(DistillationBackend backend)
    {
        using var scope = NewDisposeScope();
        var student = Logits([3, 8], ScalarType.Float32, seed: 10);
        var teacher = Logits([3, 8], ScalarType.Float32, seed: 11);
        using var loss = new DistillationLoss(new DistillationOptions { Backend = backend });
        loss.forward(student, teacher).backward();
        Assert.Null(teacher.grad);
        Assert.NotNull(student.grad);
    }

    [Theory]
    [InlineData(DistillationDivergence.Forward, DistillationBackend.LibTorch)]
    [InlineData(DistillationDivergence.Forward, DistillationBackend.Fused)]
    [InlineData(DistillationDivergence.JensenShannon, DistillationBackend.LibTorch)]
    public void Negative_infinite_teacher_logits_give_finite_loss_and_gradient(DistillationDivergence divergence, DistillationBackend backend)
    {
        using var scope = NewDisposeScope();
        var student = Logits([6, 3000], ScalarType.Float64, seed: 12);
        var teacherFull = Logits([6, 3000], ScalarType.Float64, seed: 13).detach();
        // Top-5 filtering, as a sampler would: everything else is −∞ (whole blocks of the fused kernel among them).
        var (top, _) = teacherFull.topk(5, -1);
        var teacher = teacherFull.masked_fill(teacherFull.lt(top[.., 4..5]), double.NegativeInfinity);
        using var loss = new DistillationLoss(new DistillationOptions { Divergence = divergence, Temperature = 1.5, Backend = backend });
        using var result = loss.Compute(student, teacher);
        result.Loss.backward();
        Assert.True(double.IsFinite(Scalar(result.Loss)));
        Assert.True(student.grad!.isfinite().all().item<bool>());
        double h = Scalar(result.TeacherEntropySum), ce = Scalar(result.CrossEntropySum), kl = Scalar(result.KlDivergenceSum);
        Assert.True(double.IsFinite(h) && double.IsFinite(ce) && double.IsFinite(kl));
        Assert.Equal(ce, h + kl, 9);
        // 5 allowed tokens: the teacher's entropy is at most log 5 per position.
        Assert.InRange(h, 0, 6 * Math.Log(5) + 1e-9);

        // The same as torch's composition where the teacher's support is all there is.
        var expected = Reference(student, teacher, divergence, 0.5, 1.5).mean() * 2.25;
        AssertClose(expected, result.Loss, 1e-12, "loss");
    }

    [Theory]
    [InlineData(DistillationDivergence.Forward, DistillationBackend.LibTorch)]
    [InlineData(DistillationDivergence.Forward, DistillationBackend.Fused)]
    [InlineData(DistillationDivergence.Reverse, DistillationBackend.LibTorch)]
    [InlineData(DistillationDivergence.JensenShannon, DistillationBackend.LibTorch)]
    public void Tokens_both_models_rule_out_count_as_absent(DistillationDivergence divergence, DistillationBackend backend)
    {
        // A padded vocabulary masked with −∞ in both models: the loss, gradient and totals equal those of the real vocabulary.
        using var scope = NewDisposeScope();
        var real = Logits([5, 9], ScalarType.Float64, seed: 30);
        var teacherReal = Logits([5, 9], ScalarType.Float64, seed: 31).detach();
        var padding = full([5, 3], double.NegativeInfinity, ScalarType.Float64);
        var student = cat([real.detach(), padding], 1).requires_grad_(true);
        var teacher = cat([teacherReal, padding], 1);
        using var loss = new DistillationLoss(new DistillationOptions { Divergence = divergence, Beta = 0.4, Temperature = 1.3, Backend = backend });

        using var padded = loss.Compute(student, teacher);
        padded.Loss.backward();
        using var plain = loss.Compute(real, teacherReal);
        plain.Loss.backward();

        AssertClose(plain.Loss, padded.Loss, 1e-12, "loss");
        AssertClose(real.grad!, student.grad![.., ..9], 1e-12, "gradient of the real vocabulary");
        Assert.Equal(0.0, Scalar(student.grad![.., 9..].abs().sum()));
        AssertClose(plain.CrossEntropySum, padded.CrossEntropySum, 1e-12, "cross-entropy");
        AssertClose(plain.TeacherEntropySum, padded.TeacherEntropySum, 1e-12, "entropy");
        AssertClose(plain.KlDivergenceSum, padded.KlDivergenceSum, 1e-12, "KL");
        AssertClose(plain.DivergenceSum, padded.DivergenceSum, 1e-12, "divergence");
    }

    [Theory]
    [InlineData(DistillationDivergence.Forward)]
    [InlineData(DistillationDivergence.Reverse)]
    [InlineData(DistillationDivergence.JensenShannon)]
    public void Libtorch_path_second_derivatives_match_torch_composition(DistillationDivergence divergence)
    {
        using var scope = NewDisposeScope();
        var student = Logits([4, 7], ScalarType.Float64, seed: 32);
        var teacher = Logits([4, 7], ScalarType.Float64, seed: 33).detach();
        var probe = Logits([4, 7], ScalarType.Float64, seed: 34).detach();
        using var loss = new DistillationLoss(new DistillationOptions { Divergence = divergence, Beta = 0.3, Temperature = 1.5, Backend = DistillationBackend.LibTorch });

        Tensor HessianProbe(Tensor value)
        {
            var gradient = autograd.grad([value], [student], retain_graph: true, create_graph: true)[0];
            return autograd.grad([(gradient * probe).sum()], [student])[0];
        }
        var actual = HessianProbe(loss.forward(student, teacher));
        var expected = HessianProbe(Reference(student, teacher, divergence, 0.3, 1.5).mean() * 2.25);
        Assert.True(Scalar(expected.abs().max()) > 1e-6, "the reference second derivative must not be zero");
        AssertClose(expected, actual, 1e-10, "second derivative");
    }

    [Fact]
    public void Reverse_kl_against_a_teacher_that_rules_out_tokens_is_infinite_not_nan()
    {
        using var scope = NewDisposeScope();
        var student = Logits([2, 6], ScalarType.Float32, seed: 14);
        var teacher = Logits([2, 6], ScalarType.Float32, seed: 15).detach().index_put_(tensor(float.NegativeInfinity), TensorIndex.Colon, TensorIndex.Single(0));
        using var loss = new DistillationLoss(new DistillationOptions { Divergence = DistillationDivergence.Reverse });
        using var result = loss.Compute(student, teacher);
        Assert.True(double.IsPositiveInfinity(Scalar(result.Loss)));
        Assert.True(double.IsFinite(Scalar(result.KlDivergenceSum)));
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(1.0)]
    public void Jensen_shannon_at_the_ends_of_beta_is_zero(double beta)
    {
        using var scope = NewDisposeScope();
        var student = Logits([3, 5], ScalarType.Float64, seed: 16);
        var teacher = Logits([3, 5], ScalarType.Float64, seed: 17).detach().index_put_(tensor(double.NegativeInfinity), TensorIndex.Colon, TensorIndex.Single(1));
        using var loss = new DistillationLoss(new DistillationOptions { Divergence = DistillationDivergence.JensenShannon, Beta = beta });
        var value = loss.forward(student, teacher);
        value.backward();
        Assert.Equal(0.0, Scalar(value));
        Assert.Equal(0.0, Scalar(student.grad!.abs().sum()));
    }

    [Theory]
    [InlineData(ScalarType.Float16)]
    [InlineData(ScalarType.BFloat16)]
    public void Half_precision_is_computed_in_float32(ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var student32 = Logits([4, 300], ScalarType.Float32, seed: 18);
        var teacher32 = Logits([4, 300], ScalarType.Float32, seed: 19).detach();
        var student = student32.detach().to(dtype).requires_grad_(true);
        foreach (var backend in new[] { DistillationBackend.LibTorch, DistillationBackend.Fused })
        {
            using var loss = new DistillationLoss(new DistillationOptions { Backend = backend });
            using var result = loss.Compute(student, teacher32.to(dtype));
            using var reference = loss.Compute(student.detach().to(ScalarType.Float32), teacher32.to(dtype).to(ScalarType.Float32));
            Assert.Equal(ScalarType.Float32, result.Loss.dtype);
            AssertClose(reference.Loss, result.Loss, 1e-5, "loss");
            result.Loss.backward();
            Assert.Equal(dtype, student.grad!.dtype);
            student.grad = null;
        }
    }

    [Theory]
    [InlineData(7, 5000, nn.Reduction.Mean, 2.0)]   // several L1 blocks per row
    [InlineData(300, 1024, nn.Reduction.Sum, 1.0)]  // several parallel tasks
    [InlineData(40, 4097, nn.Reduction.None, 0.5)]
    public void Fused_kernel_matches_the_composed_path_in_float32(long rows, long classes, nn.Reduction reduction, double tau)
    {
        using var scope = NewDisposeScope();
        var student = Logits([rows, classes], ScalarType.Float32, seed: 20);
        var teacher = Logits([rows, classes], ScalarType.Float32, seed: 21).detach();
        teacher = teacher.masked_fill(rand([rows, classes], generator: new Generator(22)).lt(0.3), float.NegativeInfinity);
        var mask = rand([rows], generator: new Generator(23)).gt(0.2);
        var options = new DistillationOptions { Temperature = tau, Reduction = reduction };
        using var fused = new DistillationLoss(options with { Backend = DistillationBackend.Fused });
        using var composed = new DistillationLoss(options with { Backend = DistillationBackend.LibTorch });

        var results = new List<(Tensor Loss, Tensor Grad, double[] Totals)>();
        foreach (var loss in new[] { fused, composed })
        {
            using var result = loss.Compute(student, teacher, mask);
            result.Loss.sum().backward();
            results.Add((result.Loss.detach().clone(), student.grad!.clone(), [Scalar(result.TeacherEntropySum), Scalar(result.CrossEntropySum), Scalar(result.KlDivergenceSum)]));
            student.grad = null;
        }
        AssertClose(results[1].Loss, results[0].Loss, 1e-5, "loss");
        AssertClose(results[1].Grad, results[0].Grad, 1e-6, "gradient");
        for (int i = 0; i < 3; i++)
            Assert.True(Math.Abs(results[1].Totals[i] - results[0].Totals[i]) <= 1e-5 * (1 + Math.Abs(results[1].Totals[i])), $"total {i}: {results[1].Totals[i]} vs {results[0].Totals[i]}");
    }

    [Fact]
    public void Auto_picks_the_fused_kernel_only_for_forward_kl_on_contiguous_cpu_float32()
    {
        using var scope = NewDisposeScope();
        var f32 = zeros(2, 3);
        var auto = DistillationOptions.Default;
        Assert.True(FusedDistillationPath.IsSelected(f32, f32, auto));
        Assert.False(FusedDistillationPath.IsSelected(f32.to(ScalarType.Float64), f32.to(ScalarType.Float64), auto));
        Assert.False(FusedDistillationPath.IsSelected(zeros(3, 2).t(), f32, auto));
        Assert.False(FusedDistillationPath.IsSelected(f32, f32, auto with { Divergence = DistillationDivergence.Reverse }));
        Assert.False(FusedDistillationPath.IsSelected(f32, f32, auto with { Backend = DistillationBackend.LibTorch }));
    }

    [Fact]
    public void Bad_inputs_throw_clear_argument_exceptions()
    {
        using var scope = NewDisposeScope();
        var student = zeros(2, 3, 5);
        using var loss = new DistillationLoss();
        Assert.Contains("does not match studentLogits shape [2, 3, 5]", Assert.Throws<ArgumentException>(() => loss.forward(student, zeros(2, 3, 4))).Message);
        Assert.Contains("floating-point", Assert.Throws<ArgumentException>(() => loss.forward(student, zeros([2, 3, 5], ScalarType.Int64))).Message);
        Assert.Contains("lossMask shape [2, 2]", Assert.Throws<ArgumentException>(() => loss.Compute(student, student, zeros([2, 2], ScalarType.Bool))).Message);
        Assert.Contains("bool", Assert.Throws<ArgumentException>(() => loss.Compute(student, student, zeros(2, 3))).Message);
        Assert.Contains("normalizer", Assert.Throws<ArgumentException>(() => loss.Compute(student, student, normalizer: 0)).Message);
        using var none = new DistillationLoss(new DistillationOptions { Reduction = nn.Reduction.None });
        Assert.Contains("Reduction.None", Assert.Throws<ArgumentException>(() => none.Compute(student, student, normalizer: 3)).Message);

        Assert.Contains("Temperature", Assert.Throws<ArgumentException>(() => new DistillationLoss(new DistillationOptions { Temperature = 0 })).Message);
        Assert.Contains("Temperature", Assert.Throws<ArgumentException>(() => new DistillationLoss(new DistillationOptions { Temperature = -1 })).Message);
        Assert.Contains("Temperature", Assert.Throws<ArgumentException>(() => new DistillationLoss(new DistillationOptions { Temperature = double.NaN })).Message);
        Assert.Contains("Beta", Assert.Throws<ArgumentException>(() => new DistillationLoss(new DistillationOptions { Beta = -0.1 })).Message);
        Assert.Contains("Beta", Assert.Throws<ArgumentException>(() => new DistillationLoss(new DistillationOptions { Beta = 1.5 })).Message);
        Assert.Contains("forward KL only", Assert.Throws<ArgumentException>(() => new DistillationLoss(new DistillationOptions { Divergence = DistillationDivergence.Reverse, Backend = DistillationBackend.Fused })).Message);
    }

    [Theory]
    [InlineData(DistillationBackend.LibTorch)]
    [InlineData(DistillationBackend.Fused)]
    public void Repeated_steps_leak_no_tensors(DistillationBackend backend)
    {
        using var loss = new DistillationLoss(new DistillationOptions { Temperature = 2, Backend = backend });
        LeakCheck.AssertNoGrowth(() =>
        {
            using var scope = NewDisposeScope();
            var student = randn(4, 6, 40, requires_grad: true);
            var teacher = randn(4, 6, 40);
            using var result = loss.Compute(student, teacher, ones([4, 6], ScalarType.Bool), normalizer: 30);
            result.Loss.backward();
        }, iterations: 30);
        LeakCheck.AssertNoGrowth(() =>
        {
            using var scope = NewDisposeScope();
            loss.forward(randn(3, 40, requires_grad: true), randn(3, 40)).backward();
        }, iterations: 30);
    }

    /// <summary>Per-position divergence of the τ-softened distributions, composed from torch's own <c>kl_div</c> (reduction none).</summary>
    private static Tensor Reference(Tensor student, Tensor teacher, DistillationDivergence divergence, double beta, double tau)
    {
        var logQ = F.log_softmax(student / tau, -1);
        var logP = F.log_softmax(teacher / tau, -1);
        // kl_div(input, target) = Σ exp(target)·(target − input); torch's log-target form gives NaN at exp(−∞)·(−∞), so those terms are dropped.
        Tensor Kl(Tensor logA, Tensor logB)
        {
            var terms = F.kl_div(logB, logA, reduction: nn.Reduction.None, log_target: true);
            return where(logA.isneginf(), zeros_like(terms), terms).sum(-1);
        }
        return divergence switch
        {
            DistillationDivergence.Forward => Kl(logP, logQ),
            DistillationDivergence.Reverse => Kl(logQ, logP),
            _ => beta * Kl(logP, (beta * logP.exp() + (1 - beta) * logQ.exp()).log()) + (1 - beta) * Kl(logQ, (beta * logP.exp() + (1 - beta) * logQ.exp()).log()),
        };
    }

    private static double Sum(Tensor perPosition, Tensor counted) => Scalar(perPosition.reshape(-1).masked_select(counted).sum());
}
