using System.Text.Json;
using System.Text.Json.Nodes;
using TinyGpt;
using TorchLoss.Examples.Tests.TinyLM;

namespace TorchLoss.Examples.Tests.Interop;

/// <summary>TinyLM's --export and --init-from, run as a user would.</summary>
[Collection("TinyLM")]
public sealed class TinyLmInteropTests
{
    [Fact]
    public void Init_from_an_export_starts_where_the_exported_run_ended_and_checks_the_vocabulary()
    {
        using var dir = new TempDirectory();
        string export = dir.File("export");
        var first = TinyLmProcess.Run("--layers", "2", "--heads", "2", "--dim", "32", "--context", "32", "--batch", "8", "--steps", "40",
            "--lr", "3e-3", "--warmup", "5", "--sample-tokens", "0", "--out", dir.File("first"), "--export", export);
        Assert.True(first.ExitCode == 0, first.Error + first.Output);
        Assert.Contains("exported for PyTorch", first.Output);
        foreach (var file in new[] { GptExport.SafetensorsFile, GptExport.PyTorchFile, NanoGptConfig.FileName, CharVocabulary.FileName })
            Assert.True(File.Exists(Path.Combine(export, file)), $"the export has no {file}");
        double exportedLoss = ValLoss(dir.File("first"));

        // No shape options: they come from config.json. One step at a negligible learning rate keeps the weights.
        string[] continueRun = ["--init-from", Path.Combine(export, GptExport.PyTorchFile), "--batch", "8", "--steps", "1", "--lr", "1e-9", "--warmup", "0", "--sample-tokens", "0"];
        var second = TinyLmProcess.Run([.. continueRun, "--out", dir.File("second")]);
        Assert.True(second.ExitCode == 0, second.Error + second.Output);
        Assert.Contains("initialised from", second.Output + second.Error);
        Assert.Contains("2 layers, 2 heads, 32 dims, context 32", second.Output + second.Error);
        double continuedLoss = ValLoss(dir.File("second"));
        Assert.True(Math.Abs(continuedLoss - exportedLoss) < 1e-4, $"the exported run ended at {exportedLoss:F6}, the run initialised from it starts at {continuedLoss:F6}");
        Assert.True(exportedLoss < Math.Log(24) - 0.5, $"the exported model barely learned ({exportedLoss:F4}): the comparison would prove little");

        // The same ids with other meanings: swap two characters in meta.json.
        var meta = JsonNode.Parse(File.ReadAllText(Path.Combine(export, CharVocabulary.FileName)))!;
        var itos = meta["itos"]!.AsArray();
        string a = itos[2]!.GetValue<string>(), b = itos[3]!.GetValue<string>();
        itos[2] = b;
        itos[3] = a;
        meta["stoi"]![a] = 3;
        meta["stoi"]![b] = 2;
        File.WriteAllText(Path.Combine(export, CharVocabulary.FileName), meta.ToJsonString());
        var swapped = TinyLmProcess.Run([.. continueRun, "--out", dir.File("third")]);
        Assert.Equal(2, swapped.ExitCode);
        Assert.Contains($"meta.json beside the weights is not the corpus's vocabulary: id 2 is \"{b}\" there and \"{a}\" in the corpus", swapped.Error);
    }

    [Fact]
    public void Init_from_weights_of_another_vocabulary_or_a_missing_file_is_a_clear_error()
    {
        using var dir = new TempDirectory();
        var otherVocabulary = TinyLmProcess.Run("--init-from", Fixtures.File(Fixtures.Safetensors), "--steps", "1", "--out", dir.File("a"));
        Assert.Equal(2, otherVocabulary.ExitCode);
        Assert.Contains("the weights have a vocabulary of 65 tokens, but the corpus's tokenizer has 24", otherVocabulary.Error);

        var missing = TinyLmProcess.Run("--init-from", dir.File("nothing.pt"), "--steps", "1", "--out", dir.File("b"));
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("--init-from: there is no file", missing.Error);
        Assert.DoesNotContain("   at ", missing.Error + otherVocabulary.Error);
    }

    private static double ValLoss(string outDir)
    {
        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "summary.json")));
        return summary.RootElement.GetProperty("val_loss").GetDouble();
    }
}
