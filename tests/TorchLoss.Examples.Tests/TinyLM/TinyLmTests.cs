using System.Globalization;
using System.Text.Json;

namespace TorchLoss.Examples.Tests.TinyLM;

/// <summary>TinyLM end to end at reduced size: the CLI, training, resume and the comparison with TorchSharp's loss.</summary>
[Collection("TinyLM")]
public sealed class TinyLmTests
{
    private static double Number(string text) => double.Parse(text.Replace(",", ""), System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The KL term of the decomposition TinyLM prints on the embedded corpus.</summary>
    internal static double PrintedSourceKl(string output)
    {
        string line = output.Split('\n').Single(l => l.Contains("the KL divergence of the model from the source", StringComparison.Ordinal));
        return Number(line.Trim().Split(' ')[0]);
    }

    private static readonly string[] Small = ["--layers", "2", "--heads", "2", "--dim", "32", "--context", "32", "--batch", "8", "--log-interval", "10"];

    [Fact]
    public void Smoke_run_on_embedded_corpus_learns_and_writes_outputs()
    {
        using var dir = new TempDirectory();
        var run = TinyLmProcess.Run(NoWaitPolicy, [.. Small, "--steps", "60", "--lr", "3e-3", "--warmup", "10", "--eval-interval", "30", "--sample-tokens", "20", "--out", dir.Path]);
        Assert.True(run.ExitCode == 0, run.Error + run.Output);
        Assert.Contains("OpenMP wait policy PASSIVE", run.Output);

        var rows = ReadMetrics(dir.File("metrics.csv"));
        Assert.Equal(60, rows.Count);
        double first = rows.Take(5).Average(r => r.Train);
        double last = rows.TakeLast(5).Average(r => r.Train);
        Assert.True(last < first - 0.5, $"training loss fell only from {first:F3} to {last:F3}");
        var evals = rows.Where(r => r.Val.HasValue).Select(r => r.Val!.Value).ToList();
        Assert.Equal(2, evals.Count);
        Assert.True(evals[1] < evals[0], $"validation loss did not fall: {evals[0]:F3} -> {evals[1]:F3}");

        using var summary = JsonDocument.Parse(File.ReadAllText(dir.File("summary.json")));
        var root = summary.RootElement;
        Assert.Equal(evals[1], root.GetProperty("val_loss").GetDouble(), 5);
        Assert.Equal(Math.Exp(root.GetProperty("val_loss").GetDouble()), root.GetProperty("val_ppl").GetDouble(), 9);
        Assert.Equal(60, root.GetProperty("steps").GetInt32());
        Assert.True(root.GetProperty("train_seconds").GetDouble() > 0);
        Assert.True(root.GetProperty("eval_seconds").GetDouble() > 0);
        Assert.True(root.GetProperty("eval_seconds").GetDouble() >= root.GetProperty("final_eval_seconds").GetDouble() - 0.01);
        Assert.True(root.GetProperty("tokens_per_second").GetDouble() > 0);
        // The printed line names training and validation time separately; tokens/s is training tokens per training second,
        // and the peak memory is a number the process measured (VmHWM), the one summary.json holds.
        var timing = System.Text.RegularExpressions.Regex.Match(run.Output,
            @"training: ([\d,]+) tokens in ([\d.]+) s \(([\d,]+) tokens/s\); validation passes: ([\d.]+) s; peak resident memory ([\d.]+) MiB");
        Assert.True(timing.Success, run.Output);
        double trainSeconds = root.GetProperty("train_seconds").GetDouble(), evalSeconds = root.GetProperty("eval_seconds").GetDouble();
        Assert.Equal(trainSeconds, Number(timing.Groups[2].Value), 0.06);
        Assert.Equal(evalSeconds, Number(timing.Groups[4].Value), 0.06);
        Assert.Equal(Number(timing.Groups[1].Value) / trainSeconds, root.GetProperty("tokens_per_second").GetDouble(), 0.01 * root.GetProperty("tokens_per_second").GetDouble());
        Assert.Equal(root.GetProperty("tokens_per_second").GetDouble(), Number(timing.Groups[3].Value), 1.0);
        double peak = root.GetProperty("peak_resident_mib").GetDouble();
        Assert.Equal(peak, Number(timing.Groups[5].Value), 0.06);
        Assert.InRange(peak, 50, 8192);
        double h = root.GetProperty("entropy_rate").GetDouble();
        Assert.True(root.GetProperty("val_loss").GetDouble() > h, "a model cannot beat the source's entropy rate");
        Assert.Contains("entropy rate H", run.Output);
        // The decomposition's terms are measured on the validation windows themselves: the KL is exact (never
        // negative) and the four parts add up to the validation loss.
        double windows = root.GetProperty("val_source_entropy").GetDouble();
        double kl = root.GetProperty("val_source_kl").GetDouble();
        double noise = root.GetProperty("val_sampling_noise").GetDouble();
        Assert.True(kl >= 0, $"KL {kl}");
        Assert.True(windows > h, $"H on windows without history {windows} vs H {h}");
        Assert.Equal(root.GetProperty("val_loss").GetDouble(), h + (windows - h) + kl + noise, 6);
        Assert.Equal(windows + kl, root.GetProperty("val_source_cross_entropy").GetDouble(), 4);
        Assert.Contains("the KL divergence of the model from the source (exact", run.Output);
        Assert.Equal(kl, PrintedSourceKl(run.Output), 6e-5);
        Assert.True(new FileInfo(dir.File("loss.png")).Length > 10_000);
        Assert.True(new FileInfo(dir.File("reliability.png")).Length > 10_000);
        // Every evaluation reports calibration; the summary holds the last one's.
        var evalRows = rows.Where(r => r.Val.HasValue).ToList();
        Assert.All(evalRows, r => Assert.True(r.Accuracy is > 0 and < 1 && r.Ece is >= 0 and < 1 && r.Confidence is > 0 and <= 1, $"step {r.Step}: {r}"));
        Assert.All(rows.Where(r => !r.Val.HasValue), r => Assert.Null(r.Accuracy));
        Assert.Equal(evalRows[^1].Accuracy!.Value, root.GetProperty("val_accuracy").GetDouble(), 5);
        Assert.Equal(evalRows[^1].Ece!.Value, root.GetProperty("val_ece").GetDouble(), 5);
        Assert.Equal(evalRows[^1].Confidence!.Value, root.GetProperty("val_confidence").GetDouble(), 5);
        Assert.Contains("validation accuracy", run.Output);
        Assert.StartsWith("the ", File.ReadAllText(dir.File("samples.txt")));
        Assert.True(File.Exists(dir.File("checkpoint.bin")));
        Assert.Empty(Directory.GetFiles(dir.Path, "*.tmp"));
    }

    [Fact]
    public void Resumed_run_reproduces_the_uninterrupted_losses()
    {
        using var straight = new TempDirectory();
        using var interrupted = new TempDirectory();
        // Dropout makes the test depend on torch's generator being restored, not only weights and data order.
        string[] options = [.. Small, "--steps", "16", "--warmup", "4", "--dropout", "0.1", "--eval-interval", "8", "--sample-tokens", "0"];

        var full = TinyLmProcess.Run([.. options, "--out", straight.Path]);
        Assert.True(full.ExitCode == 0, full.Error);
        var first = TinyLmProcess.Run([.. options, "--out", interrupted.Path, "--stop-after", "7"]);
        Assert.True(first.ExitCode == 0, first.Error);
        Assert.Equal(7, ReadMetrics(interrupted.File("metrics.csv")).Count);
        var second = TinyLmProcess.Run([.. options, "--out", interrupted.Path, "--resume"]);
        Assert.True(second.ExitCode == 0, second.Error);
        Assert.Contains("resumed", second.Output + second.Error);

        var expected = ReadMetrics(straight.File("metrics.csv"));
        var actual = ReadMetrics(interrupted.File("metrics.csv"));
        Assert.Equal(16, expected.Count);
        Assert.Equal(expected, actual);   // losses and the validation calibration restored from the checkpoint
    }

    [Fact]
    public void Resume_with_different_options_is_refused()
    {
        using var dir = new TempDirectory();
        Assert.Equal(0, TinyLmProcess.Run([.. Small, "--steps", "4", "--stop-after", "2", "--out", dir.Path]).ExitCode);
        var run = TinyLmProcess.Run([.. Small, "--steps", "4", "--lr", "5e-3", "--resume", "--out", dir.Path]);
        Assert.NotEqual(0, run.ExitCode);
        Assert.Contains("different options", run.Error);
    }

    [Fact]
    public void Compare_builtin_agrees_with_nn_CrossEntropyLoss()
    {
        using var dir = new TempDirectory();
        var run = TinyLmProcess.Run([.. Small, "--steps", "12", "--warmup", "3", "--label-smoothing", "0.1", "--dropout", "0.1", "--compare-builtin", "--out", dir.Path]);
        Assert.True(run.ExitCode == 0, run.Error);
        using var summary = JsonDocument.Parse(File.ReadAllText(dir.File("summary.json")));
        var root = summary.RootElement;
        Assert.True(root.GetProperty("max_abs_delta_loss").GetDouble() <= 1e-5, run.Output);
        Assert.True(root.GetProperty("max_rel_delta_grad").GetDouble() <= 1e-4, run.Output);
        Assert.True(root.GetProperty("agree").GetBoolean());
        Assert.Contains("agree on every step's loss and gradient", run.Output);
        // The drift of the separately trained copy is measured and reported, whatever its size.
        Assert.True(double.IsFinite(root.GetProperty("drift_max_abs_delta_parameter").GetDouble()));
        Assert.Contains("drift of a second copy", run.Output);
        var lines = File.ReadAllLines(dir.File("compare.csv"));
        Assert.Equal(13, lines.Length);
        // The two losses really are computed (not copied): both fall over the run, and their gradients are not zero.
        double firstLoss = double.Parse(lines[1].Split(',')[2], CultureInfo.InvariantCulture);
        double lastLoss = double.Parse(lines[^1].Split(',')[2], CultureInfo.InvariantCulture);
        Assert.True(lastLoss < firstLoss);
        Assert.All(lines.Skip(1), line => Assert.True(double.Parse(line.Split(',')[5], CultureInfo.InvariantCulture) > 0));
    }

    [Fact]
    public void Corpus_file_trains_with_characters_or_gpt2_tokens()
    {
        using var dir = new TempDirectory();
        string corpus = dir.File("corpus.txt");
        File.WriteAllText(corpus, string.Concat(Enumerable.Repeat("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n", 40)));
        foreach (var tokenizer in new[] { "char", "gpt2" })
        {
            string outDir = dir.File(tokenizer);
            var run = TinyLmProcess.Run([.. Small, "--corpus", corpus, "--tokenizer", tokenizer, "--steps", "3", "--sample-tokens", "5", "--out", outDir]);
            Assert.True(run.ExitCode == 0, run.Error + run.Output);
            using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "summary.json")));
            Assert.StartsWith(tokenizer == "gpt2" ? "GPT-2" : "characters", summary.RootElement.GetProperty("tokenizer").GetString());
            Assert.True(double.IsFinite(summary.RootElement.GetProperty("val_loss").GetDouble()));
        }
    }

    private static readonly Dictionary<string, string?> NoWaitPolicy = new() { ["OMP_WAIT_POLICY"] = null };

    // OpenMP (libgomp) prints OMP_WAIT_POLICY = 'PASSIVE' even when the variable is unset, so the spin count, which
    // only a passive policy sets to 0 (unset: 300,000; active: 30,000,000,000), is what tells them apart.
    [Theory]
    [InlineData(null, "PASSIVE", "0")]
    [InlineData("passive", "PASSIVE", "0")]
    [InlineData("ACTIVE", "ACTIVE", "30000000000")]
    public void OpenMP_reads_passive_waits_unless_the_user_chose_a_policy(string? userPolicy, string policyRead, string spinCount)
    {
        using var dir = new TempDirectory();
        // OMP_DISPLAY_ENV makes OpenMP print the settings it read when libtorch loaded it: what is in force, not what
        // TinyLM's opt-in (TorchBackend.UsePassiveOpenMpWaits) meant to set. The missing corpus ends the run right after libtorch has loaded.
        var run = TinyLmProcess.Run(new Dictionary<string, string?> { ["OMP_WAIT_POLICY"] = userPolicy, ["GOMP_SPINCOUNT"] = null, ["OMP_DISPLAY_ENV"] = "VERBOSE" },
            "--corpus", dir.File("no-such-file.txt"), "--out", dir.File("out"));
        Assert.True(run.ExitCode == 2, run.Error + run.Output);
        Assert.Contains("OPENMP DISPLAY ENVIRONMENT BEGIN", run.Error);
        Assert.Contains($"OMP_WAIT_POLICY = '{policyRead}'", run.Error);
        Assert.Contains($"GOMP_SPINCOUNT = '{spinCount}'", run.Error);
        // and TinyLM logs what its opt-in did
        Assert.Contains(userPolicy is null ? "OpenMP wait policy PASSIVE: OMP_WAIT_POLICY set before libtorch loads"
            : $"OpenMP wait policy {userPolicy}, as OMP_WAIT_POLICY in the environment chose", run.Output + run.Error);
    }

    [Fact]
    public void Missing_corpus_file_is_a_clear_error()
    {
        using var dir = new TempDirectory();
        string outDir = dir.File("out");
        var run = TinyLmProcess.Run("--corpus", dir.File("no-such-file.txt"), "--out", outDir);
        AssertFailedCleanly(run, outDir, "does not exist");
    }

    [Fact]
    public void Empty_corpus_file_is_a_clear_error()
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.File("empty.txt"), "");
        string outDir = dir.File("out");
        var run = TinyLmProcess.Run("--corpus", dir.File("empty.txt"), "--out", outDir);
        AssertFailedCleanly(run, outDir, "is empty");
    }

    [Fact]
    public void Corpus_shorter_than_a_context_window_is_a_clear_error()
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.File("short.txt"), "To be, or not to be, that is the question.");
        string outDir = dir.File("out");
        var run = TinyLmProcess.Run("--corpus", dir.File("short.txt"), "--context", "64", "--out", outDir);
        AssertFailedCleanly(run, outDir, "too short");
    }

    [Theory]
    [InlineData("--layers", "0", "--layers must be at least 1")]
    [InlineData("--dropout", "1.5", "--dropout must be in [0, 1)")]
    [InlineData("--tokenizer", "bpe", "bpe")]
    [InlineData("--dim", "30", "--dim (30) must be a multiple of --heads (4)")]
    [InlineData("--lr", "-1", "--lr must be in (0, ∞)")]
    [InlineData("--steps", "many", "many")]
    public void Bad_option_value_is_a_clear_error(string option, string value, string message)
    {
        using var dir = new TempDirectory();
        string outDir = dir.File("out");
        var run = TinyLmProcess.Run(option, value, "--out", outDir);
        AssertFailedCleanly(run, outDir, message);
    }

    [Fact]
    public void Prompt_outside_the_vocabulary_is_refused_before_training()
    {
        using var dir = new TempDirectory();
        string outDir = dir.File("out");
        // The embedded corpus has lowercase letters, space and punctuation only: 'Z' has no token.
        var run = TinyLmProcess.Run([.. Small, "--steps", "2", "--prompt", "Zebra", "--out", outDir]);
        AssertFailedCleanly(run, outDir, "--prompt cannot be encoded");
        Assert.DoesNotContain("step 1/", run.Output + run.Error);
    }

    [Fact]
    public void Help_lists_every_option()
    {
        var run = TinyLmProcess.Run("--help");
        Assert.Equal(0, run.ExitCode);
        foreach (var option in new[] { "--corpus", "--tokenizer", "--layers", "--heads", "--dim", "--context", "--batch", "--steps", "--lr", "--dropout", "--label-smoothing", "--seed", "--out", "--resume", "--compare-builtin" })
            Assert.Contains(option, run.Output);
    }

    private static void AssertFailedCleanly(TinyLmProcess.Result run, string outDir, string message)
    {
        Assert.True(run.ExitCode == 2, $"exit code {run.ExitCode}: {run.Error}");
        Assert.Contains(message, run.Error);
        Assert.DoesNotContain("   at ", run.Error); // a message, not a stack trace
        Assert.False(Directory.Exists(outDir), "a failed run wrote into --out");
    }

    private sealed record Row(int Step, double Train, double? Val, double? Accuracy, double? Ece, double? Confidence);

    private static List<Row> ReadMetrics(string path)
    {
        var lines = File.ReadAllLines(path);
        var column = lines[0].Split(',').Select((name, i) => (name, i)).ToDictionary(c => c.name, c => c.i);
        double? Optional(string[] f, string name) => f[column[name]].Length == 0 ? null : double.Parse(f[column[name]], CultureInfo.InvariantCulture);
        return lines.Skip(1).Select(line => line.Split(',')).Select(f => new Row(
            int.Parse(f[column["step"]], CultureInfo.InvariantCulture),
            double.Parse(f[column["train_loss"]], CultureInfo.InvariantCulture),
            Optional(f, "val_loss"), Optional(f, "val_accuracy"), Optional(f, "val_ece"), Optional(f, "val_confidence"))).ToList();
    }
}
