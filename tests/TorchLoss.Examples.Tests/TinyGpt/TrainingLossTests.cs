using TinyGpt;
using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss.Examples.Tests.TinyGpt;

/// <summary>The fused-head training loss is the plain one: same loss, NLL, token count and gradients, from the same unshifted labels.</summary>
public class TrainingLossTests
{
    [Fact]
    public void FusedHeadEqualsTheCausalTokenCrossEntropyOnTheModelsLogits()
    {
        using var scope = NewDisposeScope();
        manual_seed(11);
        using var model = new Gpt(new GptConfig(VocabSize: 30, ContextLength: 8, Layers: 1, Heads: 2, Dim: 16));
        model.eval(); // no dropout, so both passes see the same network
        var ids = randint(0, 30, [3, 8]);
        var labels = ids.clone();
        labels[1, 4] = tensor(-100L);
        var mask = rand([3, 8], generator: new Generator(12)).gt(0.2);
        using var batch = new TrainingBatch(ids, labels, mask);
        var options = new CrossEntropyOptions { LabelSmoothing = 0.1, ZLossWeight = 1e-4 };
        using var plain = new CausalLMTrainingLoss(options);
        using var fused = new FusedHeadTrainingLoss(options);

        long tokens = plain.CountTokens(batch);
        Assert.Equal(tokens, fused.CountTokens(batch));
        var (plainLoss, plainNll, plainGrads) = Run(plain, model, batch, tokens);
        var (fusedLoss, fusedNll, fusedGrads) = Run(fused, model, batch, tokens);

        Assert.Equal(plainLoss, fusedLoss, 1e-5);
        Assert.Equal(plainNll, fusedNll, 1e-4);
        for (int i = 0; i < plainGrads.Count; i++)
            Assert.True(allclose(plainGrads[i], fusedGrads[i], rtol: 1e-4, atol: 1e-6), $"gradient of parameter {i} differs");
    }

    private static (double Loss, double Nll, List<Tensor> Gradients) Run(ITrainingLoss loss, Gpt model, TrainingBatch batch, long normalizer)
    {
        model.zero_grad();
        var (value, nll) = loss.Compute(model, batch, normalizer);
        value.backward();
        var gradients = model.parameters().Select(p => p.grad!.clone()).ToList();
        return (value.item<float>(), nll.item<double>(), gradients);
    }
}
