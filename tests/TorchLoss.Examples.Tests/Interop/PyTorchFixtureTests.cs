using TinyGpt;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace TorchLoss.Examples.Tests.Interop;

/// <summary>
/// TinyGpt against files that real PyTorch made (tools/golden/make_golden.py, PyTorch 1.13): it loads nanoGPT's
/// state_dict from .pt and safetensors and computes PyTorch's logits, loss and gradients to float32 rounding.
/// </summary>
public sealed class PyTorchFixtureTests(ITestOutputHelper output)
{
    // float32 rounding: PyTorch and libtorch sum in different orders (OpenBLAS vs. MKL, manual vs. fused attention).
    // Measured: |Δlogit| ≤ 5.3e-6 on logits up to 11.9, |Δloss| 4.8e-7, |Δgrad| ≤ 1.6e-7 on gradients up to 0.56;
    // the bounds leave about 10x room for other thread counts and CPUs.
    private const double LogitTolerance = 5e-5;
    private const double LossTolerance = 5e-6;
    private const double GradientTolerance = 2e-6;

    [Theory]
    [InlineData(Fixtures.PyTorch)]
    [InlineData(Fixtures.Safetensors)]
    [InlineData(Fixtures.TrainingCheckpoint)]
    public void Weights_from_PyTorch_reproduce_its_logits_loss_and_gradients(string file)
    {
        var golden = Fixtures.Golden();
        try
        {
            using var weights = ImportedWeights.Open(Fixtures.File(file), heads: 1);
            Assert.Equal(NanoGptConfig.FileName, weights.ConfigSource);
            using var model = weights.CreateModel();
            Assert.Equal(new GptConfig(VocabSize: 65, ContextLength: 16, Layers: 2, Heads: 2, Dim: 32), model.Config);
            model.eval();

            using var scope = NewDisposeScope();
            var logits = model.forward(golden["ids"]);
            double logitDiff = MaxAbsDiff(logits, golden["logits"]);
            using var crossEntropy = new TokenCrossEntropy();
            var loss = crossEntropy.forward(logits, golden["targets"]);
            double lossDiff = Math.Abs(loss.item<float>() - golden["loss"].item<float>());
            loss.backward();
            var attention = model.named_parameters().Single(p => GptWeights.ToNanoGptName(p.name) == "transformer.h.0.attn.c_attn.weight").parameter;
            double attentionGradDiff = MaxAbsDiff(attention.grad!, golden["grad.transformer.h.0.attn.c_attn.weight"]);
            // The tied weight's gradient sums the head's and the embedding's: it checks the tying, not only the head.
            double headGradDiff = MaxAbsDiff(model.HeadWeight.grad!, golden["grad.lm_head.weight"]);
            output.WriteLine($"{file}: max |Δlogit| {logitDiff:E2}, |Δloss| {lossDiff:E2} (loss {loss.item<float>():F6}), max |Δgrad| c_attn {attentionGradDiff:E2}, tied head {headGradDiff:E2}");

            Assert.True(logitDiff < LogitTolerance, $"logits differ from PyTorch's by up to {logitDiff:E2}");
            Assert.True(lossDiff < LossTolerance, $"loss differs from PyTorch's by {lossDiff:E2}");
            Assert.True(attentionGradDiff < GradientTolerance, $"c_attn gradient differs from PyTorch's by up to {attentionGradDiff:E2}");
            Assert.True(headGradDiff < GradientTolerance, $"tied head gradient differs from PyTorch's by up to {headGradDiff:E2}");
        }
        finally
        {
            Fixtures.DisposeAll(golden.Values);
        }
    }

    [Fact]
    public void Both_fixture_formats_hold_the_same_tensors()
    {
        var pt = GptWeights.Read(Fixtures.File(Fixtures.PyTorch));
        var st = GptWeights.Read(Fixtures.File(Fixtures.Safetensors));
        try
        {
            Assert.Equal(st.Keys.Order(), pt.Keys.Order());
            foreach (var (name, tensor) in st)
                Assert.True(Identical(tensor, pt[name]), $"{name} differs between the .pt and the safetensors fixture");
        }
        finally
        {
            Fixtures.DisposeAll(pt.Values.Concat(st.Values));
        }
    }

    [Theory]
    [InlineData(Fixtures.PyTorch)]
    [InlineData(Fixtures.Safetensors)]
    public void Export_has_the_fixtures_names_shapes_dtypes_and_values(string fixture)
    {
        using var dir = new TinyLM.TempDirectory();
        using (var weights = ImportedWeights.Open(Fixtures.File(fixture), heads: 1))
        using (var model = weights.CreateModel())
            GptExport.Write(model, dir.Path);

        var expected = GptWeights.Read(Fixtures.File(fixture));
        try
        {
            foreach (string file in new[] { GptExport.SafetensorsFile, GptExport.PyTorchFile })
            {
                var exported = GptWeights.Read(dir.File(file));
                try
                {
                    Assert.Equal(expected.Keys.Order(), exported.Keys.Order());
                    foreach (var (name, tensor) in expected)
                    {
                        Assert.Equal(tensor.shape, exported[name].shape);
                        Assert.Equal(tensor.dtype, exported[name].dtype);
                        Assert.True(Identical(tensor, exported[name]), $"{file}: {name} changed on the way through TinyGpt");
                    }
                }
                finally
                {
                    Fixtures.DisposeAll(exported.Values);
                }
            }
        }
        finally
        {
            Fixtures.DisposeAll(expected.Values);
        }
        Assert.Equal(NanoGptConfig.Read(Fixtures.File(NanoGptConfig.FileName)), NanoGptConfig.Read(dir.File(NanoGptConfig.FileName)));
        Assert.False(File.Exists(dir.File(CharVocabulary.FileName)));
    }

    [Fact]
    public void A_nanoGPT_training_checkpoint_alone_gives_its_model_args_and_weights()
    {
        using var dir = new TinyLM.TempDirectory();
        using var weights = OpenWithoutConfigJson(dir, Fixtures.TrainingCheckpoint, heads: 1, expectedSource: "model_args");
        var plain = GptWeights.Read(Fixtures.File(Fixtures.PyTorch));
        try
        {
            // Only the model's tensors, under their names without torch.compile's prefix; the optimiser state is skipped.
            Assert.Equal(plain.Keys.Order(), weights.State.Keys.Select(k => k["_orig_mod.".Length..]).Order());
            foreach (var (name, tensor) in plain)
                Assert.True(Identical(tensor, weights.State["_orig_mod." + name]), $"{name} differs between the checkpoint and the state_dict");
        }
        finally
        {
            Fixtures.DisposeAll(plain.Values);
        }
    }

    [Fact]
    public void Without_a_config_json_the_shape_is_read_from_the_weights()
    {
        using var dir = new TinyLM.TempDirectory();
        using var weights = OpenWithoutConfigJson(dir, Fixtures.PyTorch, heads: 2, expectedSource: "tensor shapes");
    }

    /// <summary>Opens a copy of a fixture that has no config.json beside it and checks the shape found anyway.</summary>
    private static ImportedWeights OpenWithoutConfigJson(TinyLM.TempDirectory dir, string fixture, int heads, string expectedSource)
    {
        File.Copy(Fixtures.File(fixture), dir.File(fixture));
        var weights = ImportedWeights.Open(dir.File(fixture), heads);
        Assert.Equal(expectedSource, weights.ConfigSource);
        Assert.Equal(NanoGptConfig.Read(Fixtures.File(NanoGptConfig.FileName)), weights.Config);
        return weights;
    }

    internal static double MaxAbsDiff(Tensor a, Tensor b)
    {
        Assert.Equal(b.shape, a.shape);
        using var scope = NewDisposeScope();
        return (a.detach().to(ScalarType.Float64) - b.to(ScalarType.Float64)).abs().max().item<double>();
    }

    /// <summary>Same dtype, shape and bytes: bit for bit.</summary>
    internal static bool Identical(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        return a.dtype == b.dtype && a.shape.SequenceEqual(b.shape) && a.contiguous().bytes.SequenceEqual(b.contiguous().bytes);
    }
}
