using System.Globalization;
using System.Text.Json;

namespace TorchLoss.Examples.Tests.TinyLM;

/// <summary>TinyLM's distillation: from the embedded corpus's source, and from a trained teacher run, at quick sizes.</summary>
[Collection("TinyLM")]
public sealed class TinyLmDistillationTests
{
    private static readonly string[] Quick = ["--layers", "1", "--heads", "2", "--context", "24", "--batch", "8", "--log-interval", "10", "--warmup", "5", "--lr", "3e-3", "--sample-tokens", "0"];

    [Fact]
    public void Distilling_from_the_source_logs_cross_entropy_as_entropy_plus_a_falling_kl()
    {
        using var dir = new TempDirectory();
        var run = TinyLmProcess.Run([.. Quick, "--dim", "32", "--steps", "40", "--eval-interval", "20", "--distill-from", "source", "--out", dir.Path]);
        Assert.True(run.ExitCode == 0, run.Error + run.Output);
        Assert.Contains("CE(source, model)", run.Output);

        var lines = File.ReadAllLines(dir.File("metrics.csv"));
        var header = lines[0].Split(',');
        int h = Array.IndexOf(header, "source_entropy"), ce = Array.IndexOf(header, "source_cross_entropy"), kl = Array.IndexOf(header, "source_kl");
        Assert.True(h > 0 && ce > 0 && kl > 0, lines[0]);
        var evaluations = lines.Skip(1).Select(l => l.Split(',')).Where(f => f[kl].Length > 0)
            .Select(f => (H: Parse(f[h]), Ce: Parse(f[ce]), Kl: Parse(f[kl]), Val: Parse(f[4]))).ToList();
        Assert.Equal(2, evaluations.Count);
        foreach (var e in evaluations)
        {
            Assert.Equal(e.Ce, e.H + e.Kl, 4);
            Assert.True(e.Kl > 0);
            // Exact conditionals average close to the windowed floor; the sampled text's NLL is an estimate of the same CE.
            Assert.InRange(e.H, 0.38, 0.5);
            Assert.True(Math.Abs(e.Val - e.Ce) < 0.1, $"validation NLL {e.Val} vs CE(source, model) {e.Ce}");
        }
        Assert.True(evaluations[1].Kl < evaluations[0].Kl, $"KL did not fall: {evaluations[0].Kl} -> {evaluations[1].Kl}");

        using var summary = JsonDocument.Parse(File.ReadAllText(dir.File("summary.json")));
        var root = summary.RootElement;
        Assert.Equal("source", root.GetProperty("distill_teacher").GetString());
        var val = root.GetProperty("distill_val");
        Assert.Equal(evaluations[1].Kl, val.GetProperty("kl").GetDouble(), 5);
        // The decomposition printed at the end uses the exact KL of the same windows: never negative.
        double printed = TinyLmTests.PrintedSourceKl(run.Output);
        Assert.True(printed >= 0, $"printed KL {printed}");
        Assert.Equal(root.GetProperty("val_source_kl").GetDouble(), printed, 6e-5);
        Assert.Equal(root.GetProperty("val_tokens").GetInt64(), val.GetProperty("positions").GetInt64());
        var train = root.GetProperty("distill_train");
        Assert.Equal(train.GetProperty("cross_entropy_sum").GetDouble(),
            train.GetProperty("teacher_entropy_sum").GetDouble() + train.GetProperty("kl_sum").GetDouble(), 2);
    }

    [Fact]
    public void A_student_distils_from_a_trained_teacher_run()
    {
        using var teacher = new TempDirectory();
        using var student = new TempDirectory();
        var trained = TinyLmProcess.Run([.. Quick, "--dim", "32", "--steps", "6", "--out", teacher.Path]);
        Assert.True(trained.ExitCode == 0, trained.Error);
        var run = TinyLmProcess.Run([.. Quick, "--dim", "16", "--steps", "6", "--teacher", teacher.Path, "--distill-alpha", "0.5", "--distill-temperature", "2", "--out", student.Path]);
        Assert.True(run.ExitCode == 0, run.Error + run.Output);
        Assert.Contains("distilling from the teacher", run.Output);
        Assert.Contains("teacher_kl", File.ReadLines(student.File("metrics.csv")).First());
        using var summary = JsonDocument.Parse(File.ReadAllText(student.File("summary.json")));
        Assert.Equal(0.5, summary.RootElement.GetProperty("distill_alpha").GetDouble());
        Assert.Equal(2, summary.RootElement.GetProperty("distill_temperature").GetDouble());
        Assert.True(summary.RootElement.GetProperty("distill_val").GetProperty("kl").GetDouble() > 0);
    }

    [Fact]
    public void Impossible_distillations_are_clear_errors()
    {
        using var dir = new TempDirectory();
        string corpus = dir.File("text.txt");
        File.WriteAllText(corpus, string.Concat(Enumerable.Repeat("to be or not to be, that is the question. ", 40)));
        var noSource = TinyLmProcess.Run([.. Quick, "--steps", "2", "--corpus", corpus, "--distill-from", "source", "--out", dir.Path]);
        Assert.Equal(2, noSource.ExitCode);
        Assert.Contains("embedded corpus", noSource.Error);

        var noTeacher = TinyLmProcess.Run([.. Quick, "--steps", "2", "--teacher", dir.File("missing"), "--out", dir.Path]);
        Assert.Equal(2, noTeacher.ExitCode);
        Assert.Contains("no checkpoint", noTeacher.Error);

        var badAlpha = TinyLmProcess.Run([.. Quick, "--distill-from", "source", "--distill-alpha", "1.5", "--out", dir.Path]);
        Assert.Equal(2, badAlpha.ExitCode);
        Assert.Contains("--distill-alpha", badAlpha.Error);
        var badTemperature = TinyLmProcess.Run([.. Quick, "--distill-from", "source", "--distill-temperature", "0", "--out", dir.Path]);
        Assert.Equal(2, badTemperature.ExitCode);
        Assert.Contains("--distill-temperature", badTemperature.Error);
    }

    private static double Parse(string text) => double.Parse(text, CultureInfo.InvariantCulture);
}
