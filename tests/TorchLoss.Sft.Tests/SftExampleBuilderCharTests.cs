using TorchLoss.Sft;
using static TorchLoss.Sft.Tests.SftTestKit;

namespace TorchLoss.Sft.Tests;

/// <summary>Label masks with the char-level tokenizer, where every position can be checked by hand.</summary>
public class SftExampleBuilderCharTests
{
    private static readonly ChatMessage[] MultiTurn = [S("Be brief."), U("hi"), A("hello"), U("2+2?"), A("4")];

    [Fact]
    public void SingleTurnPlainLabelsAreExactlyTheAnswerAndItsNewline()
    {
        var example = Builder(Chars, ChatTemplate.Plain).Build([U("hello"), A("hi")]);
        // "User: hello\nAssistant: hi\n": 'h' is at 23, 'i' at 24, the end-of-turn '\n' at 25.
        // Vocabulary: 2 specials, then '\n'=2, ' '=3, ... 'a'..'z' = 51..76, so 'h' = 58 and 'i' = 59.
        long[] expected = [.. Enumerable.Repeat(-100L, 23), 58, 59, 2];
        Assert.Equal(expected, example.Labels);
        Assert.Equal(Expected(Chars, "User: hello\nAssistant: hi\n", 23, 24, 25), example.Labels);
        Assert.Equal(Chars.EncodeToIds("User: hello\nAssistant: hi\n"), example.InputIds);
        Assert.Equal(3, example.TrainedTokenCount);
        Assert.Equal("User: hello⏎Assistant: [hi⏎]", Show(Chars, example));
    }

    [Fact]
    public void MultiTurnAllTrainsEveryAnswerButNoHeaderSystemOrUserText()
    {
        var example = Builder(Chars, ChatTemplate.Plain).Build(MultiTurn);
        Assert.Equal("System: Be brief.⏎User: hi⏎Assistant: [hello⏎]User: 2+2?⏎Assistant: [4⏎]", Show(Chars, example));
        Assert.Equal(["hello\n", "4\n"], TrainedTexts(Chars, example));
        Assert.Equal(8, example.TrainedTokenCount);
    }

    [Fact]
    public void LastTrainsOnlyTheFinalAnswer()
    {
        var example = Builder(Chars, ChatTemplate.Plain, new SftOptions { MaxLength = 4096, TrainOn = AssistantTurns.Last }).Build(MultiTurn);
        Assert.Equal("System: Be brief.⏎User: hi⏎Assistant: hello⏎User: 2+2?⏎Assistant: [4⏎]", Show(Chars, example));
        Assert.Equal(2, example.TrainedTokenCount);
    }

    [Fact]
    public void EndOfTurnCanBeLeftUntrained()
    {
        var example = Builder(Chars, ChatTemplate.Plain, new SftOptions { MaxLength = 4096, TrainEndOfTurn = false }).Build(MultiTurn);
        Assert.Equal("System: Be brief.⏎User: hi⏎Assistant: [hello]⏎User: 2+2?⏎Assistant: [4]⏎", Show(Chars, example));
        Assert.Equal(["hello", "4"], TrainedTexts(Chars, example));
    }

    [Fact]
    public void ChatMLTrainsContentAndImEndButNotTheSeparatorNewline()
    {
        var example = Builder(Chars, ChatTemplate.ChatML).Build([S("x"), U("hello"), A("hi"), U("ok?"), A("ok")]);
        Assert.Equal(
            "<|im_start|>system⏎x<|im_end|>⏎<|im_start|>user⏎hello<|im_end|>⏎<|im_start|>assistant⏎[hi<|im_end|>]⏎" +
            "<|im_start|>user⏎ok?<|im_end|>⏎<|im_start|>assistant⏎[ok<|im_end|>]⏎",
            Show(Chars, example));
        Assert.Equal(["hi<|im_end|>", "ok<|im_end|>"], TrainedTexts(Chars, example));
        Assert.Equal(6, example.TrainedTokenCount);   // h, i, <|im_end|>, o, k, <|im_end|>
    }

    [Fact]
    public void SingleTurnChatMLHandCheckedLabels()
    {
        var example = Builder(Chars, ChatTemplate.ChatML).Build([U("hello"), A("hi")]);
        // <|im_start|>=0 user \n hello <|im_end|>=1 \n <|im_start|> assistant \n h i <|im_end|> \n: 28 tokens, 'h' at 24.
        long[] expected = [.. Enumerable.Repeat(-100L, 24), 58, 59, 1, -100];
        Assert.Equal(expected, example.Labels);
        Assert.Equal(0, example.InputIds[13]);
    }

    [Fact]
    public void BeginningOfSequenceIsNeverTrained()
    {
        var template = ChatTemplate.ChatML with { BeginningOfSequence = "<|im_start|>" };
        var example = Builder(Chars, template).Build([U("a"), A("b")]);
        Assert.Equal("<|im_start|><|im_start|>user⏎a<|im_end|>⏎<|im_start|>assistant⏎[b<|im_end|>]⏎", Show(Chars, example));
    }

    [Fact]
    public void EmptyAnswerStillTeachesTheModelToStop()
    {
        var example = Builder(Chars, ChatTemplate.Plain).Build([U("say nothing"), A("")]);
        Assert.Equal("User: say nothing⏎Assistant: [⏎]", Show(Chars, example));
    }

    [Fact]
    public void PromptCompletionTrainsOnlyTheCompletion()
    {
        var example = Builder(Chars, ChatTemplate.Plain).Build("2+2=", "4");
        Assert.Equal(Expected(Chars, "2+2=4\n", 4, 5), example.Labels);
        Assert.Equal("2+2=[4⏎]", Show(Chars, example));
        var noEnd = Builder(Chars, ChatTemplate.Plain, new SftOptions { MaxLength = 64, TrainEndOfTurn = false }).Build("2+2=", "4");
        Assert.Equal("2+2=[4]⏎", Show(Chars, noEnd));
    }

    [Fact]
    public void PromptCompletionTruncation()
    {
        var keepStart = new SftOptions { MaxLength = 6, Truncation = TruncationPolicy.KeepStart };
        Assert.Equal("abcd[ef]", Show(Chars, Builder(Chars, ChatTemplate.Plain, keepStart).Build("abcd", "efgh")));
        var drop = Assert.Throws<SftExampleException>(() => Builder(Chars, ChatTemplate.Plain, new SftOptions { MaxLength = 6 }).Build("abcd", "efgh"));
        Assert.Equal(SftRejection.TooLong, drop.Reason);
        Assert.Contains("no turns to drop", drop.Message);
        var error = new SftOptions { MaxLength = 6, Truncation = TruncationPolicy.Error };
        Assert.Equal(SftRejection.TooLong, Assert.Throws<SftExampleException>(() => Builder(Chars, ChatTemplate.Plain, error).Build("abcd", "efgh")).Reason);
        var cutBeforeCompletion = new SftOptions { MaxLength = 3, Truncation = TruncationPolicy.KeepStart };
        Assert.Equal(SftRejection.NoTrainedTokens, Assert.Throws<SftExampleException>(() => Builder(Chars, ChatTemplate.Plain, cutBeforeCompletion).Build("abcd", "efgh")).Reason);
    }

    [Fact]
    public void EveryPositionOfARealisticChatIsTrainedExactlyWhenInsideAnAnswer()
    {
        ChatMessage[] chat = [S("You add numbers."), U("12+30"), A("42"), U("1+1"), A("2"), U("7+8"), A("15")];
        var example = Builder(Chars, ChatTemplate.Plain).Build(chat);
        var rendered = ChatTemplate.Plain.Render(chat);
        for (int i = 0; i < example.Length; i++)
        {
            bool inAnswer = rendered.Messages.Any(m => m.Role == ChatRole.Assistant && (m.Content.Overlaps(i, i + 1) || m.EndOfTurn.Overlaps(i, i + 1)));
            Assert.Equal(inAnswer, example.IsTrained(i));
        }
    }
}
