using TinyGpt;
using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss.Examples.Tests.TinyGpt;

/// <summary>The shared trainer: accumulation normalised by the step's token count, and checkpoint round trips.</summary>
[Collection("TinyLM")]
public sealed class GptTrainerTests
{
    private static readonly GptConfig Config = new(VocabSize: 11, ContextLength: 16, Layers: 2, Heads: 2, Dim: 16);

    [Fact]
    public void Accumulating_two_half_batches_equals_one_full_batch_even_with_uneven_token_counts()
    {
        using var ids = randint(0, Config.VocabSize, [12, 16], generator: new Generator(5));
        // Rows 0-5 learn few tokens, rows 6-11 many: a per-micro-batch mean would weigh them wrongly.
        using var labels = ids.clone();
        labels[TensorIndex.Slice(0, 6), TensorIndex.Slice(3, null)] = tensor(-100L);
        var options = new TrainerOptions { Steps = 3, WarmupSteps = 0, LearningRate = 1e-2 };

        using var full = NewModel();
        using var halves = CopyOf(full);
        using var fullTrainer = new GptTrainer(full, options);
        using var halvesTrainer = new GptTrainer(halves, options with { AccumulationSteps = 2 });
        var fullSource = new FixedBatches([(ids, labels)]);
        var halfSource = new FixedBatches([(ids[..6], labels[..6]), (ids[6..], labels[6..])]);
        for (int step = 0; step < 3; step++)
        {
            var a = fullTrainer.TrainStep(fullSource);
            var b = halvesTrainer.TrainStep(halfSource);
            Assert.Equal(a.Tokens, b.Tokens);
            Assert.Equal(6 * 2 + 6 * 15, a.Tokens);
            Assert.Equal(a.Loss, b.Loss, 5);
            Assert.Equal(a.NllSum, b.NllSum, 3);
        }
        // Adam divides by √v, so float rounding in near-zero gradients can move a weight by up to lr per step;
        // a wrongly normalised accumulation moves most weights and changes the losses above.
        double maxDiff = full.parameters().Zip(halves.parameters()).Max(pq => (pq.First - pq.Second).abs().max().item<float>());
        Assert.True(maxDiff < 1e-3, $"parameters differ by {maxDiff} after accumulation");
    }

    [Fact]
    public void Checkpoint_round_trip_restores_training_exactly()
    {
        using var ids = randint(0, Config.VocabSize, [4, 16], generator: new Generator(9));
        var options = new TrainerOptions { Steps = 6, WarmupSteps = 2, LearningRate = 1e-2 };
        string path = Path.Combine(Path.GetTempPath(), $"tinygpt-{Guid.NewGuid():N}.bin");
        try
        {
            using var model = NewModel();
            using var copy = CopyOf(model);
            using var trainer = new GptTrainer(model, options);
            var source = new FixedBatches([(ids, ids)]);
            trainer.TrainStep(source);
            trainer.TrainStep(source);
            Checkpoint.Save(path, trainer, source);
            Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(path)!, $".{Path.GetFileName(path)}.*.tmp"));
            var expected = Enumerable.Range(0, 4).Select(_ => trainer.TrainStep(source).Loss).ToArray();

            using var resumed = new GptTrainer(copy, options);
            var resumedSource = new FixedBatches([(ids, ids)]);
            Checkpoint.Load(path, resumed, resumedSource);
            Assert.Equal(2, resumed.Step);
            Assert.Equal(2, resumed.History.Count);
            var actual = Enumerable.Range(0, 4).Select(_ => resumed.TrainStep(resumedSource).Loss).ToArray();
            Assert.Equal(expected, actual);
            Assert.Equal(trainer.TrainTotals, resumed.TrainTotals);
            Assert.Equal(trainer.History.Take(2), resumed.History.Take(2));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Training_and_validation_seconds_are_counted_apart()
    {
        using var ids = randint(0, Config.VocabSize, [4, 16], generator: new Generator(3));
        var options = new TrainerOptions { Steps = 4, WarmupSteps = 1, LearningRate = 1e-2, EvalInterval = 2 };
        using var model = NewModel();
        using var trainer = new GptTrainer(model, options);
        var validationPasses = 0;
        var wall = System.Diagnostics.Stopwatch.StartNew();
        trainer.Fit(new FixedBatches([(ids, ids)]), () =>
        {
            validationPasses++;
            // A slow validation pass: its time must land in EvaluationSeconds, not in TrainingSeconds.
            Thread.Sleep(300);
            return [new TrainingBatch(ids.clone(), ids.clone())];
        });
        double wallSeconds = wall.Elapsed.TotalSeconds;
        Assert.Equal(2, validationPasses);
        Assert.True(trainer.EvaluationSeconds >= 0.6, $"evaluation took {trainer.EvaluationSeconds} s");
        // Counted in both, the 0.6 s of sleep would make the two clocks add up to more than the wall time.
        Assert.True(trainer.TrainingSeconds + trainer.EvaluationSeconds <= wallSeconds + 0.01,
            $"training {trainer.TrainingSeconds} s + validation {trainer.EvaluationSeconds} s > wall {wallSeconds} s: training includes the validation passes");
        var last = trainer.History[^1];
        Assert.Equal(trainer.TrainingSeconds, last.TrainSeconds);
        Assert.Equal(trainer.EvaluationSeconds, last.EvalSeconds);
        Assert.Equal(last.TrainSeconds + last.EvalSeconds, last.ElapsedSeconds);
    }

    [Theory]
    [InlineData("truncated")]
    [InlineData("flipped byte")]
    public void A_damaged_checkpoint_is_refused_and_leaves_the_trainer_as_it_was(string damage)
    {
        using var ids = randint(0, Config.VocabSize, [4, 16], generator: new Generator(9));
        var options = new TrainerOptions { Steps = 6, WarmupSteps = 2, LearningRate = 1e-2 };
        string path = Path.Combine(Path.GetTempPath(), $"tinygpt-{Guid.NewGuid():N}.bin");
        try
        {
            using var model = NewModel();
            using var trainer = new GptTrainer(model, options);
            var source = new FixedBatches([(ids, ids)]);
            trainer.TrainStep(source);
            Checkpoint.Save(path, trainer, source);
            trainer.TrainStep(source);   // now the trainer differs from the checkpoint
            byte[] bytes = File.ReadAllBytes(path);
            if (damage == "truncated") bytes = bytes[..(bytes.Length / 2)];
            else bytes[bytes.Length / 2] ^= 0x5A;
            File.WriteAllBytes(path, bytes);

            var weightsBefore = model.parameters().Select(p => p.detach().clone()).ToArray();
            var totalsBefore = trainer.TrainTotals;
            var error = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(path, trainer, source));
            Assert.Contains("truncated or damaged", error.Message);
            Assert.Throws<InvalidDataException>(() => Checkpoint.ReadHeader(path));

            Assert.Equal(2, trainer.Step);
            Assert.Equal(2, trainer.History.Count);
            Assert.Equal(totalsBefore, trainer.TrainTotals);
            Assert.All(model.parameters().Zip(weightsBefore), pair => Assert.True(pair.First.eq(pair.Second).all().item<bool>()));
            Assert.Equal(3, trainer.TrainStep(source).Step);   // and training goes on from where it was
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void An_atomic_write_that_fails_keeps_the_old_file_and_the_original_error()
    {
        string dir = Directory.CreateTempSubdirectory("atomic-").FullName;
        try
        {
            string path = Path.Combine(dir, "summary.json");
            AtomicFile.WriteAllText(path, "old");
            var error = Assert.Throws<InvalidOperationException>(() => AtomicFile.Write(path, stream =>
            {
                stream.WriteByte(1);
                throw new InvalidOperationException("disk on fire");
            }));
            Assert.Equal("disk on fire", error.Message);
            Assert.Equal("old", File.ReadAllText(path));
            Assert.Equal([path], Directory.GetFiles(dir));   // no temporary file left behind
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Generate_restores_the_training_mode(bool training)
    {
        using var model = NewModel();
        model.train(training);
        using var prompt = tensor(new long[] { 1, 2 }).unsqueeze(0);
        using var _ = model.Generate(prompt, 3, temperature: 0);
        Assert.Equal(training, model.training);
    }

    [Fact]
    public void Generate_extends_the_prompt_and_is_reproducible_with_a_seeded_generator()
    {
        using var model = NewModel();
        using var prompt = tensor(new long[] { 1, 2, 3 }).unsqueeze(0);
        using var g1 = new Generator(3);
        using var g2 = new Generator(3);
        using var a = model.Generate(prompt, 40, temperature: 1.0, topK: 5, generator: g1);
        using var b = model.Generate(prompt, 40, temperature: 1.0, topK: 5, generator: g2);
        Assert.Equal([1, 43], a.shape);
        Assert.True(a.eq(b).all().item<bool>());
        Assert.Equal(new long[] { 1, 2, 3 }, a[0, ..3].data<long>().ToArray());
    }

    private static Gpt NewModel()
    {
        manual_seed(17);
        return new Gpt(Config);
    }

    private static Gpt CopyOf(Gpt model)
    {
        var copy = new Gpt(model.Config);
        using var weights = new MemoryStream();
        model.save(new BinaryWriter(weights));
        weights.Position = 0;
        copy.load(new BinaryReader(weights));
        return copy;
    }

    /// <summary>Cycles through fixed batches; its position is the index of the next one.</summary>
    private sealed class FixedBatches((Tensor Ids, Tensor Labels)[] batches) : IBatchSource
    {
        private int next;

        public TrainingBatch Next()
        {
            var (ids, labels) = batches[next++ % batches.Length];
            return new TrainingBatch(ids.clone(), labels.clone());
        }

        public void SaveState(BinaryWriter writer) => writer.Write(next);

        public void LoadState(BinaryReader reader) => next = reader.ReadInt32();
    }
}
