using TinyGpt;
using TorchLoss;
using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss.Examples.Tests.TinyGpt;

/// <summary>The trainer's distillation loss: the α mix, the totals, and loading a teacher from a checkpoint.</summary>
[Collection("TinyLM")]
public sealed class DistillationTrainingLossTests
{
    private static readonly GptConfig Config = new(VocabSize: 11, ContextLength: 16, Layers: 1, Heads: 2, Dim: 16);

    [Fact]
    public void Loss_is_alpha_times_hard_labels_plus_the_rest_times_tau_squared_kl()
    {
        using var scope = NewDisposeScope();
        manual_seed(3);
        using var model = new Gpt(Config);
        var ids = randint(0, Config.VocabSize, [3, 16], generator: new Generator(4));
        var labels = ids.clone();
        labels[0, 5] = tensor(-100L);
        var mask = rand([3, 16], generator: new Generator(6)).gt(0.2);
        var batch = new TrainingBatch(ids, labels, mask);
        var teacher = randn([3, 16, Config.VocabSize], generator: new Generator(5)) * 2;
        var distillation = new DistillationOptions { Temperature = 2 };

        using var mixed = new DistillationTrainingLoss(_ => teacher, 0.3, distillation);
        using var causal = new TokenCrossEntropy(new CrossEntropyOptions { Causal = true });
        using var soft = new DistillationLoss(distillation with { Causal = true });
        using var shiftedByHand = new DistillationLoss(distillation);
        long normalizer = mixed.CountTokens(batch) + 4;
        Assert.Equal(causal.Options.CountTokens(labels, mask), mixed.CountTokens(batch));

        var (loss, nll) = mixed.Compute(model, batch, normalizer);
        using var logits = model.forward(ids);
        using var hard = causal.Compute(logits, labels, mask, normalizer);
        // The causal distillation loss takes the mask aligned with the labels, as the hard-label loss does.
        var learned = labels.ne(LossDefaults.IgnoreIndex).logical_and(mask);
        using var kl = soft.Compute(logits, teacher, learned, normalizer);
        Assert.Equal(0.3 * hard.Loss.item<float>() + 0.7 * kl.Loss.item<float>(), loss.item<float>(), 5);
        // An independent reference: the positions the hard labels count are t where label t+1 is learned.
        var counted = cat([learned[.., 1..], zeros(3, 1, ScalarType.Bool)], 1);
        using var reference = shiftedByHand.Compute(logits, teacher, counted, normalizer);
        Assert.Equal(reference.Loss.item<float>(), kl.Loss.item<float>(), 6);
        Assert.Equal(reference.PositionCount.item<long>(), kl.PositionCount.item<long>());
        Assert.Equal(hard.NllSum.item<double>(), nll.item<double>(), 4);

        var totals = mixed.TrainingTotals;
        Assert.Equal(kl.PositionCount.item<long>(), totals.Positions);
        Assert.Equal(totals.CrossEntropySum, totals.TeacherEntropySum + totals.KlDivergenceSum, 3);
        Assert.Equal(kl.KlDivergenceSum.item<double>(), totals.KlDivergenceSum, 3);

        // Evaluation (eval mode) keeps its own totals, taken once per pass.
        model.eval();
        mixed.Compute(model, batch, normalizer);
        Assert.Equal(totals, mixed.TrainingTotals);
        Assert.Equal(totals.Positions, mixed.TakeEvaluationTotals().Positions);
        Assert.Equal(0, mixed.TakeEvaluationTotals().Positions);
    }

    [Fact]
    public void A_teacher_equal_to_the_model_has_zero_kl_and_its_entropy_as_cross_entropy()
    {
        using var scope = NewDisposeScope();
        manual_seed(7);
        using var model = new Gpt(Config);
        var ids = randint(0, Config.VocabSize, [2, 16], generator: new Generator(8));
        using var loss = new DistillationTrainingLoss(b => model.forward(b.Ids), 0);
        loss.Compute(model, new TrainingBatch(ids, ids), 30).Loss.backward();
        var totals = loss.TrainingTotals;
        Assert.Equal(30, totals.Positions);
        Assert.True(Math.Abs(totals.KlDivergence) < 1e-5, $"KL {totals.KlDivergence}");
        Assert.Equal(totals.TeacherEntropy, totals.CrossEntropy, 4);
    }

    [Fact]
    public void Alpha_outside_zero_to_one_is_rejected()
    {
        Assert.Contains("alpha", Assert.Throws<ArgumentException>(() => new DistillationTrainingLoss(b => b.Ids, 1.5)).Message);
        Assert.Contains("None", Assert.Throws<ArgumentException>(() => new DistillationTrainingLoss(b => b.Ids, 0.5, new DistillationOptions { Reduction = nn.Reduction.None })).Message);
    }

    [Fact]
    public void A_teacher_loads_from_a_checkpoint_with_its_trained_weights()
    {
        string path = Path.Combine(Path.GetTempPath(), $"tinygpt-teacher-{Guid.NewGuid():N}.bin");
        try
        {
            using var scope = NewDisposeScope();
            manual_seed(9);
            using var model = new Gpt(Config);
            using var trainer = new GptTrainer(model, new TrainerOptions { Steps = 2, WarmupSteps = 0 });
            using var source = new RandomWindowBatches(Enumerable.Range(0, 200).Select(i => i % Config.VocabSize).ToArray(), 2, 16, 1);
            trainer.TrainStep(source);
            Checkpoint.Save(path, trainer, source);

            using var teacher = Checkpoint.LoadModel(path);
            Assert.Equal(Config, teacher.Config);
            model.eval();
            teacher.eval();
            var ids = randint(0, Config.VocabSize, [1, 16], generator: new Generator(2));
            Assert.True(model.forward(ids).eq(teacher.forward(ids)).all().item<bool>());
        }
        finally
        {
            File.Delete(path);
        }
    }
}
