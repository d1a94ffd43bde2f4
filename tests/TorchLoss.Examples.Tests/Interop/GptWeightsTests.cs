using TinyGpt;
using TorchLoss.Sft;
using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss.Examples.Tests.Interop;

/// <summary>TinyGpt's own exports round trip bit for bit, and loading is strict but takes nanoGPT's variants.</summary>
public sealed class GptWeightsTests
{
    private static readonly GptConfig Config = new(VocabSize: 23, ContextLength: 12, Layers: 3, Heads: 2, Dim: 16);

    [Theory]
    [InlineData(GptExport.SafetensorsFile)]
    [InlineData(GptExport.PyTorchFile)]
    public void Own_export_reloaded_reproduces_the_logits_bit_for_bit(string file)
    {
        using var dir = new TinyLM.TempDirectory();
        using var model = NewModel(seed: 1);
        using var ids = randint(0, Config.VocabSize, [4, Config.ContextLength], generator: new Generator(2));
        using var expected = Logits(model, ids);
        var tokenizer = new CharTokenizer("abcdefghijklmnopqrstuvw");
        GptExport.Write(model, dir.Path, CharVocabulary.From(tokenizer));

        using var weights = ImportedWeights.Open(dir.File(file), heads: 1);
        manual_seed(99); // a different initialisation, all of it overwritten
        using var reloaded = weights.CreateModel();
        using var actual = Logits(reloaded, ids);

        Assert.Equal(Config, reloaded.Config);
        Assert.True(PyTorchFixtureTests.Identical(expected, actual), $"logits differ by up to {PyTorchFixtureTests.MaxAbsDiff(actual, expected):E2}");
        Assert.NotNull(weights.Vocabulary);
        Assert.Null(weights.Vocabulary.FirstDifference(CharVocabulary.From(tokenizer)));
        Assert.Equal(3, weights.Vocabulary.FirstDifference(CharVocabulary.From(new CharTokenizer("abcefghijklmnopqrstuvwx"))));
        Assert.Equal("\"d\"", weights.Vocabulary.Describe(3));
        Assert.Equal("c", weights.Vocabulary.Tokens[2]);
        Assert.Equal(2, weights.Vocabulary.Ids["c"]);
        Assert.Empty(Directory.GetFiles(dir.Path, "*.tmp"));
    }

    [Fact]
    public void Export_names_follow_nanoGPT_with_the_tied_head_listed_twice()
    {
        using var model = NewModel(seed: 3);
        using var scope = NewDisposeScope();
        var state = GptWeights.StateDict(model);
        Assert.Equal("transformer.wte.weight", state.Keys.First());
        Assert.Equal("lm_head.weight", state.Keys.Last());
        Assert.Contains("transformer.h.2.attn.c_attn.bias", state.Keys);
        Assert.Contains("transformer.h.0.mlp.c_proj.weight", state.Keys);
        Assert.Contains("transformer.ln_f.bias", state.Keys);
        Assert.Equal([3L * Config.Dim, Config.Dim], state["transformer.h.1.attn.c_attn.weight"].shape);
        Assert.Equal(2 + 12 * Config.Layers + 2 + 1, state.Count);
        Assert.True(PyTorchFixtureTests.Identical(state["lm_head.weight"], state["transformer.wte.weight"]));
    }

    [Fact]
    public void Missing_unexpected_misshapen_or_untied_weights_are_refused_and_leave_the_model_untouched()
    {
        using var source = NewModel(seed: 4);
        using var target = NewModel(seed: 5);
        using var before = target.HeadWeight.detach().clone();
        using var scope = NewDisposeScope();

        var missing = GptWeights.StateDict(source);
        missing.Remove("transformer.h.1.mlp.c_fc.weight");
        AssertRefused(target, missing, "missing transformer.h.1.mlp.c_fc.weight");

        var extra = GptWeights.StateDict(source);
        extra.Add("transformer.h.3.ln_1.weight", ones(Config.Dim));
        AssertRefused(target, extra, "unexpected transformer.h.3.ln_1.weight");

        var misshapen = GptWeights.StateDict(source);
        misshapen["transformer.wpe.weight"] = zeros(Config.ContextLength + 1, Config.Dim);
        AssertRefused(target, misshapen, "transformer.wpe.weight is [13, 16] but the model's is [12, 16]");

        var untied = GptWeights.StateDict(source);
        untied["lm_head.weight"] = untied["lm_head.weight"] + 1;
        AssertRefused(target, untied, "lm_head.weight differs from transformer.wte.weight");

        var notAMask = GptWeights.StateDict(source);
        notAMask.Add("transformer.h.0.attn.bias", ones(1, 1, Config.ContextLength, Config.ContextLength));
        AssertRefused(target, notAMask, "unexpected transformer.h.0.attn.bias");

        var integers = GptWeights.StateDict(source);
        integers["transformer.ln_f.weight"] = ones(Config.Dim, dtype: ScalarType.Int64);
        AssertRefused(target, integers, "transformer.ln_f.weight is Int64, not floating point");

        Assert.True(PyTorchFixtureTests.Identical(before, target.HeadWeight), "a refused load changed the model");
    }

    [Fact]
    public void NanoGPT_variants_load_one_tied_name_compiled_keys_causal_masks_and_no_biases()
    {
        using var source = NewModel(seed: 6);
        using var ids = randint(0, Config.VocabSize, [2, Config.ContextLength], generator: new Generator(7));
        using var expected = Logits(source, ids);
        using var scope = NewDisposeScope();

        // torch.compile'd nanoGPT prefixes every key; safetensors' save_model keeps one of two tied names; nanoGPT on
        // PyTorch < 2.0 stores a causal mask per block.
        var state = GptWeights.StateDict(source).ToDictionary(p => "_orig_mod." + p.Key, p => p.Value);
        state.Remove("_orig_mod.transformer.wte.weight");
        for (int layer = 0; layer < Config.Layers; layer++)
            state.Add($"_orig_mod.transformer.h.{layer}.attn.bias", ones(Config.ContextLength, Config.ContextLength).tril().view(1, 1, Config.ContextLength, Config.ContextLength));
        using (var model = NewModel(seed: 8))
        {
            GptWeights.Load(model, state);
            Assert.True(PyTorchFixtureTests.Identical(expected, Logits(model, ids)));
        }

        // nanoGPT with bias = False has no bias tensors at all: TinyGpt's biases become zero.
        var biasFree = GptWeights.StateDict(source).Where(p => !p.Key.EndsWith(".bias", StringComparison.Ordinal)).ToDictionary();
        using (var model = NewModel(seed: 9))
        {
            GptWeights.Load(model, biasFree);
            Assert.All(model.named_parameters().Where(p => p.name.EndsWith("bias", StringComparison.Ordinal)), p => Assert.Equal(0, p.parameter.abs().max().item<float>()));
            Assert.Equal(NanoGptConfig.From(Config) with { Bias = false }, GptWeights.InferConfig(biasFree, Config.Heads));
        }
    }

    [Fact]
    public void Unreadable_files_and_unknown_extensions_are_clear_errors()
    {
        using var dir = new TinyLM.TempDirectory();
        using var model = NewModel(seed: 10);
        var badName = Assert.Throws<ArgumentException>(() => GptWeights.Save(model, dir.File("model.onnx")));
        Assert.Contains("name it .safetensors, or .pt", badName.Message);

        File.WriteAllText(dir.File("notes.pt"), "not weights");
        var notWeights = Assert.Throws<InvalidDataException>(() => GptWeights.Read(dir.File("notes.pt")));
        Assert.Contains("neither safetensors nor a PyTorch", notWeights.Message);

        File.WriteAllText(dir.File(NanoGptConfig.FileName), """{"n_layer": 2}""");
        GptWeights.Save(model, dir.File("model.safetensors"));
        var badConfig = Assert.Throws<InvalidDataException>(() => ImportedWeights.Open(dir.File("model.safetensors"), heads: 2));
        Assert.Contains("is not a nanoGPT config", badConfig.Message);
    }

    [Fact]
    public void Saving_over_a_larger_file_leaves_no_stale_bytes()
    {
        using var dir = new TinyLM.TempDirectory();
        string path = dir.File("model.safetensors");
        File.WriteAllBytes(path, new byte[1 << 20]);
        using var model = NewModel(seed: 11);
        GptWeights.Save(model, path);
        long expected = 8 + 4L * (model.ParameterCount + Config.VocabSize * Config.Dim);
        Assert.InRange(new FileInfo(path).Length, expected, expected + 8192); // data plus a JSON header
    }

    private static Gpt NewModel(int seed)
    {
        manual_seed(seed);
        var model = new Gpt(Config);
        // GPT-2's initialisation gives near-zero logits; wider weights make the comparisons sharper.
        using var noGrad = no_grad();
        foreach (var p in model.parameters())
            p.add_(randn_like(p) * 0.2);
        return model;
    }

    private static Tensor Logits(Gpt model, Tensor ids)
    {
        model.eval();
        using var noGrad = no_grad();
        return model.forward(ids);
    }

    private static void AssertRefused(Gpt model, Dictionary<string, Tensor> state, string message)
    {
        var error = Assert.Throws<InvalidDataException>(() => GptWeights.Load(model, state));
        Assert.Contains(message, error.Message);
    }
}
