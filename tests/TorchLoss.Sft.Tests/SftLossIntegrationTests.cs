using Microsoft.ML.Tokenizers;
using TorchLoss.Sft;
using TorchSharp;
using static TorchLoss.Sft.Tests.SftTestKit;
using static TorchSharp.torch;

namespace TorchLoss.Sft.Tests;

/// <summary>The end-to-end property: the causal cross-entropy on a batch built here counts exactly the assistant tokens.</summary>
public class SftLossIntegrationTests
{
    private static readonly CrossEntropyOptions Causal = new() { Causal = true };

    private static readonly ChatMessage[][] Chats =
    [
        [S("You are terse."), U("hello"), A("hi there")],
        [U("What is 2+2?"), A("4"), U("And 3+3?"), A("6.")],
        [U("Name a colour"), A("blue")],
    ];

    /// <summary>
    /// The tokens of every assistant content and end-of-turn marker, each encoded alone as the builder's design
    /// says, computed independently of the builder.
    /// </summary>
    private static int AssistantTokenCount(Tokenizer tokenizer, ChatTemplate template, ChatMessage[] chat) =>
        chat.Where(m => m.Role == ChatRole.Assistant).Sum(m => tokenizer.EncodeToIds(m.Content).Count + tokenizer.EncodeToIds(template.EndOfTurn).Count);

    public static TheoryData<string, string> Cases() => new() { { "chars", "plain" }, { "chars", "chatml" }, { "gpt2", "plain" }, { "gpt2", "chatml" } };

    [Theory]
    [MemberData(nameof(Cases))]
    public void CausalCrossEntropyCountsExactlyTheAssistantTokens(string tokenizerName, string templateName)
    {
        var tokenizer = TokenizerNamed(tokenizerName);
        int vocabulary = tokenizerName == "gpt2" ? 50257 : Chars.VocabularySize;
        var template = templateName == "plain" ? ChatTemplate.Plain : ChatTemplate.ChatML;
        var examples = Chats.Select(Builder(tokenizer, template).Build).ToList();
        int expected = Chats.Sum(c => AssistantTokenCount(tokenizer, template, c));

        using var scope = NewDisposeScope();
        using var loss = new TokenCrossEntropy(Causal);
        var batch = new SftCollator(padTokenId: 0).Collate(examples);
        manual_seed(1);
        var logits = randn(batch.InputIds.shape[0], batch.InputIds.shape[1], vocabulary);
        var result = loss.Compute(logits, batch.Labels);
        Assert.Equal(expected, result.TokenCount.item<long>());
        Assert.Equal(expected, Causal.CountTokens(batch.Labels));
        Assert.Equal(expected, batch.TrainedTokenCount);
        Assert.True(double.IsFinite(result.Loss.item<float>()));

        var packer = new SequencePacker(rowLength: examples.Max(e => e.Length) + 8, padTokenId: 0);
        var packed = packer.ToBatch(packer.Pack(examples));
        var packedLogits = randn(packed.InputIds.shape[0], packed.InputIds.shape[1], vocabulary);
        Assert.Equal(expected, loss.Compute(packedLogits, packed.Labels).TokenCount.item<long>());
    }

    [Fact]
    public void TheLossIsTheMeanNllOfEachAssistantTokenGivenTheTokenBeforeIt()
    {
        // Guards against shifting twice: logits at t must be scored against the token at t+1, once.
        var example = Builder(Chars, ChatTemplate.Plain).Build([U("hello"), A("hi")]);
        using var scope = NewDisposeScope();
        var batch = new SftCollator(0).Collate([example]);
        manual_seed(2);
        var logits = randn(1, example.Length, Chars.VocabularySize);
        using var loss = new TokenCrossEntropy(Causal);
        var actual = loss.forward(logits, batch.Labels).item<float>();
        var logProbs = nn.functional.log_softmax(logits[0], 1);
        double sum = 0;
        for (int t = 1; t < example.Length; t++)
            if (example.IsTrained(t)) sum -= logProbs[t - 1, example.InputIds[t]].item<float>();
        Assert.Equal(sum / example.TrainedTokenCount, actual, 4);
    }
}
