using TorchLoss.Sft;
using static TorchLoss.Sft.Tests.SftTestKit;

namespace TorchLoss.Sft.Tests.Preference;

public class PreferencePairBuilderTests
{
    private static readonly ChatMessage[] History = [S("Be brief."), U("What is the capital of France?"), A("Paris."), U("And of Italy?")];

    public static TheoryData<string, string> Cases => TokenizerTemplatePairs("plain", "chatml");

    private static ChatTemplate TemplateNamed(string name) => name == "chatml" ? ChatTemplate.ChatML : ChatTemplate.Plain;

    private static PreferencePairBuilder Builder(string tokenizer, string template, int maxLength = 4096, TruncationPolicy truncation = TruncationPolicy.DropOldestTurns) =>
        new(TokenizerNamed(tokenizer), TemplateNamed(template), new PreferencePairOptions { MaxLength = maxLength, Truncation = truncation });

    [Theory]
    [MemberData(nameof(Cases))]
    public void BothSidesCarryTheGenerationPromptsTokens(string tokenizer, string template)
    {
        var builder = Builder(tokenizer, template);
        var pair = builder.Build(History, chosen: "Rome.", rejected: "Milan, I think, or maybe Turin.");
        var generationPrompt = builder.SideBuilder.BuildGenerationPrompt(History);
        Assert.Equal(generationPrompt, pair.PromptIds);
        Assert.Equal(generationPrompt, pair.Chosen.InputIds[..pair.PromptLength]);
        Assert.Equal(generationPrompt, pair.Rejected.InputIds[..pair.PromptLength]);
        Assert.NotEqual(pair.Chosen.Length, pair.Rejected.Length);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void TheMaskCoversExactlyTheAnswerAndItsEndOfTurnMarker(string tokenizer, string template)
    {
        var tok = TokenizerNamed(tokenizer);
        var pair = Builder(tokenizer, template).Build(History, "Rome.", "Milan.");
        string endOfTurn = TemplateNamed(template).EndOfTurn;
        // One run each: the earlier answer "Paris." is prompt, not scored.
        Assert.Equal(["Rome." + endOfTurn], TrainedTexts(tok, pair.Chosen));
        Assert.Equal(["Milan." + endOfTurn], TrainedTexts(tok, pair.Rejected));
        Assert.Equal(pair.PromptLength, pair.Chosen.TrainedRuns()[0].Start.Value);
        Assert.Equal(pair.PromptLength, pair.Rejected.TrainedRuns()[0].Start.Value);
    }

    [Fact]
    public void TheMaskOfACharLevelPairIsTheHandWrittenOne()
    {
        var pair = Builder("chars", "plain").Build([U("2+2?")], "4", "five");
        const string prompt = "User: 2+2?\nAssistant: ";
        Assert.Equal(Expected(Chars, prompt + "4\n", 22, 23), pair.Chosen.Labels);
        Assert.Equal(Expected(Chars, prompt + "five\n", 22, 23, 24, 25, 26), pair.Rejected.Labels);
        Assert.Equal(22, pair.PromptLength);
    }

    [Fact]
    public void TwoConversationsSharingTheirPromptGiveTheSamePair()
    {
        var builder = Builder("gpt2", "chatml");
        var fromAnswers = builder.Build(History, "Rome.", "Milan.");
        var fromConversations = builder.Build([.. History, A("Rome.")], [.. History, A("Milan.")]);
        Assert.Equal(fromAnswers.Chosen.InputIds, fromConversations.Chosen.InputIds);
        Assert.Equal(fromAnswers.Chosen.Labels, fromConversations.Chosen.Labels);
        Assert.Equal(fromAnswers.Rejected.InputIds, fromConversations.Rejected.InputIds);
        Assert.Equal(fromAnswers.Rejected.Labels, fromConversations.Rejected.Labels);
    }

    [Fact]
    public void RawPromptPairsStartWithTheCompletionPrompt()
    {
        var builder = Builder("gpt2", "plain");
        var pair = builder.Build("Q: 2+2= A:", " 4", " 5, surely");
        Assert.Equal(builder.SideBuilder.BuildGenerationPrompt("Q: 2+2= A:"), pair.PromptIds);
        Assert.Equal([" 4\n"], TrainedTexts(Gpt2, pair.Chosen));
        Assert.Equal([" 5, surely\n"], TrainedTexts(Gpt2, pair.Rejected));
    }

    [Fact]
    public void DroppingTurnsDropsTheSameExchangesFromBothSides()
    {
        ChatMessage[] history = [S("sys"), U("first question"), A("first answer"), U("second question"), A("second answer"), U("third question")];
        var full = Builder("chars", "plain");
        var untruncated = full.Build(history, "ok", "a much longer answer that needs room");
        // Long enough for the short side as it is, too short for the long side: both must lose the same exchange(s).
        int maxLength = untruncated.Chosen.Length;
        Assert.True(untruncated.Rejected.Length > maxLength);
        var pair = Builder("chars", "plain", maxLength).Build(history, "ok", "a much longer answer that needs room");

        Assert.Equal(pair.Chosen.InputIds[..pair.PromptLength], pair.Rejected.InputIds[..pair.PromptLength]);
        Assert.True(pair.PromptLength < untruncated.PromptLength);
        Assert.True(pair.Rejected.Length <= maxLength);
        var kept = Enumerable.Range(0, 4).Select(k => (IReadOnlyList<ChatMessage>)[history[0], .. history.Skip(1 + 2 * k)]).First(h => full.SideBuilder.BuildGenerationPrompt(h).Length == pair.PromptLength);
        Assert.Equal(full.SideBuilder.BuildGenerationPrompt(kept), pair.PromptIds);
        Assert.Equal(S("sys"), kept[0]);
        Assert.Equal(["ok\n"], TrainedTexts(Chars, pair.Chosen));
        Assert.Equal(["a much longer answer that needs room\n"], TrainedTexts(Chars, pair.Rejected));
    }

    [Fact]
    public void KeepStartCutsOnlyTheAnswerAndNeverScoresACutEndOfTurn()
    {
        var pair0 = Builder("chars", "plain").Build([U("hi")], "yes", "no way, never");
        int maxLength = pair0.PromptLength + 5;
        var pair = Builder("chars", "plain", maxLength, TruncationPolicy.KeepStart).Build([U("hi")], "yes", "no way, never");
        Assert.Equal(pair0.PromptIds, pair.PromptIds);
        Assert.Equal(pair0.Chosen.Labels, pair.Chosen.Labels);
        Assert.Equal(maxLength, pair.Rejected.Length);
        Assert.Equal(["no wa"], TrainedTexts(Chars, pair.Rejected));
    }

    [Fact]
    public void APairThatCannotFitIsRejectedAsTooLong()
    {
        var pair0 = Builder("chars", "plain").Build(History, "Rome.", "Milan.");
        int prompt = pair0.PromptLength;

        var error = Assert.Throws<SftExampleException>(() => Builder("chars", "plain", prompt + 3, TruncationPolicy.Error).Build(History, "Rome.", "Milan."));
        Assert.Equal(SftRejection.TooLong, error.Reason);
        Assert.Contains("cannot fit", error.Message);

        // The last exchange alone does not fit either.
        var dropped = Assert.Throws<SftExampleException>(() => Builder("chars", "plain", 20).Build(History, "Rome.", "Milan."));
        Assert.Equal(SftRejection.TooLong, dropped.Reason);
        Assert.Contains("No whole exchange is left to drop after dropping the 1 oldest", dropped.Message);
        Assert.DoesNotContain("policy Error", dropped.Message);

        // KeepStart with a prompt that fills MaxLength would leave both answers all-masked.
        var cut = Assert.Throws<SftExampleException>(() => Builder("chars", "plain", prompt, TruncationPolicy.KeepStart).Build(History, "Rome.", "Milan."));
        Assert.Equal(SftRejection.TooLong, cut.Reason);
        Assert.Contains("leaves no answer token", cut.Message);
    }

    [Fact]
    public void EmptyAnswersAndMisplacedTurnsAreErrors()
    {
        var builder = Builder("chars", "plain");
        Assert.Contains("chosen answer is empty", Assert.Throws<ArgumentException>(() => builder.Build(History, "", "Milan.")).Message);
        Assert.Contains("rejected answer is null", Assert.Throws<ArgumentException>(() => builder.Build(History, "Rome.", null!)).Message);
        Assert.Throws<ArgumentException>(() => builder.Build("prompt", "a", ""));
        Assert.Throws<ArgumentException>(() => builder.Build([U("q"), A("a")], "b", "c"));
        Assert.Throws<ArgumentException>(() => builder.Build([U("q")], [U("q")]));
        Assert.Throws<ArgumentException>(() => builder.Build([U("q"), A("a\nb")], [U("q"), A("c")]));   // the marker inside an answer
        Assert.Throws<ArgumentException>(() => new PreferencePairBuilder(Chars, ChatTemplate.Plain, new PreferencePairOptions { MaxLength = 1 }));
    }

    [Fact]
    public void ConversationsWithDifferentPromptsAreRejected()
    {
        var builder = Builder("chars", "plain");
        var differ = Assert.Throws<ArgumentException>(() => builder.Build([U("q one"), A("a")], [U("q two"), A("b")]));
        Assert.Contains("differ at message 0", differ.Message);
        var length = Assert.Throws<ArgumentException>(() => builder.Build([U("q"), A("a")], [U("q"), A("x"), U("more"), A("b")]));
        Assert.Contains("differ", length.Message);
    }

    [Fact]
    public void APairOfExamplesWithDifferentPromptsIsRejected()
    {
        var sft = SftTestKit.Builder(Chars, ChatTemplate.Plain, new SftOptions { MaxLength = 100, TrainOn = AssistantTurns.Last });
        var other = Assert.Throws<ArgumentException>(() => new PreferencePair(sft.Build([U("abc"), A("x")]), sft.Build([U("abd"), A("x")])));
        Assert.Contains("prompts differ at token", other.Message);
        var longer = Assert.Throws<ArgumentException>(() => new PreferencePair(sft.Build([U("ab"), A("x")]), sft.Build([U("abc"), A("x")])));
        Assert.Contains("prompts differ", longer.Message);
        var all = SftTestKit.Builder(Chars, ChatTemplate.Plain);   // trains every assistant turn: two runs
        var twoRuns = Assert.Throws<ArgumentException>(() => new PreferencePair(all.Build([U("a"), A("b"), U("c"), A("d")]), all.Build([U("a"), A("b"), U("c"), A("e")])));
        Assert.Contains("2 runs", twoRuns.Message);
    }
}
