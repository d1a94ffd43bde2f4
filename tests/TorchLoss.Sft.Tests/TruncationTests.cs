using TorchLoss.Sft;
using static TorchLoss.Sft.Tests.SftTestKit;

namespace TorchLoss.Sft.Tests;

public class TruncationTests
{
    // "System: sys\n" is 12 chars; each exchange "User: qN\nAssistant: aN\n" is 23: 81 in all.
    private static readonly ChatMessage[] ThreeExchanges = [S("sys"), U("q1"), A("a1"), U("q2"), A("a2"), U("q3"), A("a3")];

    private static SftExample Build(int maxLength, TruncationPolicy policy, IReadOnlyList<ChatMessage>? chat = null) =>
        Builder(Chars, ChatTemplate.Plain, new SftOptions { MaxLength = maxLength, Truncation = policy }).Build(chat ?? ThreeExchanges);

    [Fact]
    public void FittingConversationIsUntouched()
    {
        Assert.Equal(81, Build(81, TruncationPolicy.Error).Length);
    }

    [Fact]
    public void DropOldestTurnsRemovesWholeExchangesAndKeepsTheSystemMessage()
    {
        Assert.Equal("System: sys⏎User: q2⏎Assistant: [a2⏎]User: q3⏎Assistant: [a3⏎]", Show(Chars, Build(60, TruncationPolicy.DropOldestTurns)));
        Assert.Equal("System: sys⏎User: q3⏎Assistant: [a3⏎]", Show(Chars, Build(40, TruncationPolicy.DropOldestTurns)));
        Assert.Equal("System: sys⏎User: q3⏎Assistant: [a3⏎]", Show(Chars, Build(35, TruncationPolicy.DropOldestTurns)));
    }

    [Fact]
    public void DropOldestTurnsRejectsWhatCannotFitEvenAsTheLastExchange()
    {
        var e = Assert.Throws<SftExampleException>(() => Build(34, TruncationPolicy.DropOldestTurns));
        Assert.Equal(SftRejection.TooLong, e.Reason);
        Assert.Contains("35 tokens", e.Message);
    }

    [Fact]
    public void AnExchangeIsAllUserMessagesWithTheAnswersThatFollow()
    {
        ChatMessage[] chat = [U("a"), U("b"), A("c"), A("d"), U("e"), A("f")];
        // The first exchange is a, b, c, d (8 + 8 + 13 + 13 chars), the second "User: e\nAssistant: f\n" (21): 63 in all.
        // Splitting at every user message would keep "b, c, d, e, f" (55 chars) here instead.
        Assert.Equal("User: e⏎Assistant: [f⏎]", Show(Chars, Build(55, TruncationPolicy.DropOldestTurns, chat)));
    }

    [Fact]
    public void DropOldestTurnsWorksWithoutASystemMessage()
    {
        Assert.Equal("User: q3⏎Assistant: [a3⏎]", Show(Chars, Build(23, TruncationPolicy.DropOldestTurns, ThreeExchanges[1..])));
    }

    [Fact]
    public void KeepStartCutsTokensAndNeverTrainsAnEndOfTurnItCutOff()
    {
        // The second answer "a2" starts at 55.
        Assert.Equal("System: sys⏎User: q1⏎Assistant: [a1⏎]User: q2⏎Assistant: [a]", Show(Chars, Build(56, TruncationPolicy.KeepStart)));
        Assert.Equal("System: sys⏎User: q1⏎Assistant: [a1⏎]User: q2⏎Assistant: [a2]", Show(Chars, Build(57, TruncationPolicy.KeepStart)));
        Assert.Equal("System: sys⏎User: q1⏎Assistant: [a1⏎]User: q2⏎Assistant: [a2⏎]", Show(Chars, Build(58, TruncationPolicy.KeepStart)));
        Assert.Equal("System: sys⏎User: q1⏎Assistant: [a1⏎]User", Show(Chars, Build(39, TruncationPolicy.KeepStart)));
    }

    [Fact]
    public void KeepStartThatCutsAwayEveryAnswerIsRejected()
    {
        var e = Assert.Throws<SftExampleException>(() => Build(20, TruncationPolicy.KeepStart));
        Assert.Equal(SftRejection.NoTrainedTokens, e.Reason);
        Assert.Contains("first 20 of 81", e.Message);
    }

    [Fact]
    public void ErrorPolicyThrows()
    {
        var e = Assert.Throws<SftExampleException>(() => Build(80, TruncationPolicy.Error));
        Assert.Equal(SftRejection.TooLong, e.Reason);
        Assert.Contains("81 tokens", e.Message);
    }

    [Fact]
    public void LastWithDropOldestTurnsStillTrainsTheFinalAnswer()
    {
        var options = new SftOptions { MaxLength = 60, TrainOn = AssistantTurns.Last };
        var example = Builder(Chars, ChatTemplate.Plain, options).Build(ThreeExchanges);
        Assert.Equal("System: sys⏎User: q2⏎Assistant: a2⏎User: q3⏎Assistant: [a3⏎]", Show(Chars, example));
    }
}
