using System.Text;
using System.Text.RegularExpressions;
using TorchLoss.Examples.Tests.Install;
using Xunit.Abstractions;

namespace TorchLoss.Examples.Tests.Readme;

/// <summary>
/// Every C# block of README.md and docs/*.md compiles and runs as written. Most blocks are fragments of a user's program that name
/// things the text around them defines (<c>model</c>, <c>logger</c>, <c>tokenIds</c>, …): each such block becomes the
/// body of a method whose parameters are exactly those names, and the test calls it with small real objects. A block
/// this test does not know fails it, so a new snippet cannot go unchecked.
/// </summary>
public sealed class ReadmeSnippetTests(ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromMinutes(10);
    private readonly string _dir = Directory.CreateTempSubdirectory("torchloss-readme-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>How a block is compiled and called: the method's name, the names the block uses but does not define, and the call.</summary>
    private sealed record Snippet(string Marker, string Name, string Parameters, string Call, string ExtraUsings = "");

    // Matched by a line of the block; Quick start's blocks are run verbatim, output included, by ConsumerProjectTests.
    private static readonly Snippet[] Known =
    [
        new("var microBatches", "GradientAccumulation", "", "GradientAccumulation();"),
        new("ClassWeights = [1.0, 0.5, 2.0, 0.0]", "ClassWeights", "", "ClassWeights();"),
        new("var teacher = nn.functional.softmax", "SoftTargets", "", "SoftTargets();"),
        new("using var hard = new TokenCrossEntropy(new CrossEntropyOptions { Causal = true });", "Distillation",
            "nn.Module<Tensor, Tensor> student, nn.Module<Tensor, Tensor> teacher, Tensor ids, double alpha",
            "Distillation(Model(65), Model(65), randint(0, 65, [2, 8]), 0.5);",
            "using TorchLoss;\nusing TorchSharp;\nusing static TorchSharp.torch;"),
        new("var builder = new SftExampleBuilder(", "Sft", "TorchSharp.torch.nn.Module<TorchSharp.torch.Tensor, TorchSharp.torch.Tensor> model",
            "Sft(Model(50257));"),
        new("using var tracker = new PerplexityTracker(logger", "PerplexityTracking",
            "ILogger logger, int steps, Func<(Tensor, Tensor?)> NextBatch, nn.Module<Tensor, Tensor> model, optim.Optimizer optimizer",
            """
            {
                using var loggerFactory = LoggerFactory.Create(b => b.AddSimpleConsole());
                var model = Model(50);
                PerplexityTracking(loggerFactory.CreateLogger("readme"), 200, () => (randint(0, 50, [4, 16]), (Tensor?)null), model, optim.Adam(model.parameters()));
            }
            """),
        new("var evaluator = new PerplexityEvaluator(", "StridedEvaluation", "nn.Module<Tensor, Tensor> model, long[] tokenIds, string text",
            "StridedEvaluation(Model(50), Enumerable.Range(0, 1000).Select(i => (long)(i * 7 % 50)).ToArray(), new string('a', 1000));"),
        new("calibration.Update(logits, ids, mask);", "Calibration",
            "Tensor logits, Tensor ids, Tensor mask, Tensor logits2d, Tensor targets",
            "Calibration(randn([2, 8, 50]), randint(0, 50, [2, 8]), ones([2, 8], ScalarType.Bool), randn([16, 50]), randint(0, 50, [16]));",
            "using static TorchSharp.torch;"),
        new("onBatch: b => calibration.Update(", "CalibrationDuringEvaluation", "nn.Module<Tensor, Tensor> model, long[] tokenIds",
            "CalibrationDuringEvaluation(Model(50), Enumerable.Range(0, 1000).Select(i => (long)(i * 7 % 50)).ToArray());",
            "using TorchLoss.Metrics;\nusing static TorchSharp.torch;"),
        new("GptExport.Write(model,", "GptInterop", "Gpt model, CharTokenizer charTokenizer",
            """
            {
                var charTokenizer = new CharTokenizer("the cat sat on the mat");
                GptInterop(new Gpt(new GptConfig(charTokenizer.VocabularySize, ContextLength: 16, Layers: 1, Heads: 4, Dim: 16)), charTokenizer);
            }
            """,
            "using TinyGpt;\nusing TorchLoss.Sft;"),
        new("using var head = new ChunkedLinearCrossEntropy(", "FusedHead", "", "FusedHead();"),
        new("using var dpo = new PreferenceLoss(new PreferenceOptions { Loss = PreferenceLossKind.Dpo", "PreferenceQuickStart", "", "PreferenceQuickStart();"),
        new("using var orpo = new ChunkedLinearPreferenceLoss(", "PreferenceFusedHead", "", "PreferenceFusedHead();"),
        new("var cache = PreferenceReferenceCache.Compute(", "PreferenceFromChats",
            "Microsoft.ML.Tokenizers.Tokenizer tokenizer, IEnumerable<(IReadOnlyList<ChatMessage> History, string Chosen, string Rejected)> data, "
            + "nn.Module<Tensor, Tensor> referenceModel, nn.Module<Tensor, Tensor> policy, IEnumerable<int[]> shuffledBatchesOfPairIndices",
            """
            {
                var chatTokenizer = new CharTokenizer("<|im_start|>user\nassistant\n<|im_end|>\n What is 2+2? It is 4. five 3+3 6 seven");
                var chats = new (IReadOnlyList<ChatMessage> History, string Chosen, string Rejected)[]
                {
                    ([ChatMessage.User("What is 2+2?")], "It is 4.", "It is five."),
                    ([ChatMessage.User("What is 3+3?")], "It is 6.", "It is seven."),
                };
                PreferenceFromChats(chatTokenizer, chats, Model(chatTokenizer.VocabularySize), Model(chatTokenizer.VocabularySize), [[1, 0], [0]]);
            }
            """,
            "using TorchLoss;\nusing TorchLoss.Sft;"),
        // The README's map of the areas: one self-contained example each.
        new("Smoothing = SmoothingKind.OtherClasses", "MapCrossEntropy", "", "MapCrossEntropy();"),
        new("using var kd = new DistillationLoss(", "MapDistillation", "", "MapDistillation();"),
        new("var sft = new SftExampleBuilder(", "MapSft", "", "MapSft();"),
        new("using var tracker = new PerplexityTracker();", "MapPerplexity", "", "MapPerplexity();"),
        new("using var calib = new CalibrationTracker(", "MapCalibration", "", "MapCalibration();"),
    ];

    /// <summary>The files whose C# blocks are checked: the README and every page under docs/.</summary>
    private static IEnumerable<string> Documents(string root) =>
        Directory.GetFiles(Path.Combine(root, "docs"), "*.md").Order(StringComparer.Ordinal).Prepend(Path.Combine(root, "README.md"));

    [Fact]
    public void EveryCSharpBlockCompilesAndRuns()
    {
        string root = RepositoryPaths.Root;
        var blocks = Documents(root)
            .SelectMany(file => Regex.Matches(File.ReadAllText(file), "```csharp\n(.*?)```", RegexOptions.Singleline)
                .Select(m => (File: Path.GetRelativePath(root, file), Code: m.Groups[1].Value)))
            .ToList();
        Assert.NotEmpty(blocks);

        DotnetProcess.RunOrFail(_dir, CommandTimeout, "new", "console", "-o", "Snippets");
        string app = Path.Combine(_dir, "Snippets");
        DotnetProcess.RunOrFail(app, CommandTimeout, "add", "reference", Path.Combine(root, "src", "TorchLoss", "TorchLoss.csproj"));
        DotnetProcess.RunOrFail(app, CommandTimeout, "add", "reference", Path.Combine(root, "src", "TorchLoss.Sft", "TorchLoss.Sft.csproj"));
        DotnetProcess.RunOrFail(app, CommandTimeout, "add", "reference", Path.Combine(root, "examples", "TinyGpt", "TinyGpt.csproj"));
        DotnetProcess.RunOrFail(app, CommandTimeout, "add", "package", "TorchSharp-cpu");

        var quickStart = ConsumerProjectTests.ReadmeQuickStartBlocks();
        var used = new List<Snippet>();
        foreach (var (file, block) in blocks)
        {
            if (quickStart.Contains(block)) continue;   // run verbatim by ConsumerProjectTests
            var matches = Known.Where(s => block.Contains(s.Marker, StringComparison.Ordinal)).ToList();
            Assert.True(matches.Count == 1, matches.Count == 0
                ? $"{file} has a C# block this test does not know; add it to {nameof(Known)}:\n{block}"
                : $"{file} has a C# block that matches {matches.Count} markers ({string.Join(", ", matches.Select(m => m.Name))}):\n{block}");
            var snippet = matches[0];
            File.WriteAllText(Path.Combine(app, snippet.Name + ".cs"), Wrap(snippet, block));
            used.Add(snippet);
        }
        Assert.Equal(Known.Select(s => s.Name).Order(), used.Select(s => s.Name).Order());   // every known block is in the docs, once
        File.WriteAllText(Path.Combine(app, "Program.cs"), ProgramCalling(used));

        var run = DotnetProcess.Run(app, CommandTimeout, "run");
        output.WriteLine(run.Output);   // what the blocks print, to compare with what the docs say they print
        Assert.True(run.ExitCode == 0, $"the docs' C# blocks did not compile or run (exit {run.ExitCode}):\n{run.Output}");
        foreach (var snippet in used)
            Assert.Contains($"ran {snippet.Name}", run.Output);
    }

    /// <summary>The block as the body of a method with the snippet's parameters; its <c>using</c> directives stay at the top of the file.</summary>
    private static string Wrap(Snippet snippet, string block)
    {
        var lines = block.Split('\n');
        var usings = lines.TakeWhile(l => l.StartsWith("using ", StringComparison.Ordinal) && !l.StartsWith("using var", StringComparison.Ordinal)
                                          && !l.StartsWith("using (", StringComparison.Ordinal) || l.Length == 0).ToList();
        var body = lines.Skip(usings.Count);
        // The block's own directives, then what the method's parameter types need (each once: a repeat is a warning).
        var directives = usings.Concat(snippet.ExtraUsings.Split('\n'))
            .Concat(["using Microsoft.Extensions.Logging;", "using TorchSharp;", "using static TorchSharp.torch;"])
            .Select(l => l.Trim()).Where(l => l.Length > 0).Distinct();
        return $$"""
            {{string.Join('\n', directives)}}

            internal static partial class Snippets
            {
                public static void {{snippet.Name}}({{snippet.Parameters}})
                {
            {{string.Join('\n', body)}}
                }
            }
            """;
    }

    private static string ProgramCalling(IEnumerable<Snippet> snippets)
    {
        var program = new StringBuilder("""
            using Microsoft.Extensions.Logging;
            using TinyGpt;
            using TorchLoss;
            using TorchLoss.Sft;
            using TorchSharp;
            using static Snippets;
            using static TorchSharp.torch;

            TorchBackend.EnsureLoaded();
            manual_seed(0);

            """);
        foreach (var snippet in snippets)
            program.AppendLine(snippet.Call).AppendLine($"Console.WriteLine(\"ran {snippet.Name}\");");
        program.AppendLine("""

            // A stand-in language model: token ids [B, T] to logits [B, T, V].
            static nn.Module<Tensor, Tensor> Model(int vocabulary) =>
                nn.Sequential(("embed", nn.Embedding(vocabulary, 8)), ("head", nn.Linear(8, vocabulary)));
            """);
        return program.ToString();
    }
}
