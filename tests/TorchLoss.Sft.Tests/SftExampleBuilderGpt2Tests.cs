using TorchLoss.Sft;
using static TorchLoss.Sft.Tests.SftTestKit;

namespace TorchLoss.Sft.Tests;

/// <summary>
/// Label masks with GPT-2's byte-level BPE, whose merges would cross the header/content boundary if the text
/// were tokenized in one piece; the builder tokenizes each assistant content and end-of-turn marker alone.
/// </summary>
public class SftExampleBuilderGpt2Tests
{
    [Fact]
    public void SingleTurnPlainHandCheckedLabels()
    {
        var example = Builder(Gpt2, ChatTemplate.Plain).Build([U("hello"), A("hi there")]);
        Assert.Equal([12982, 25, 23748, 198, 48902, 25, 220, 5303, 612, 198], example.InputIds);   // User : ␣hello \n Assistant : ␣ hi ␣there \n
        Assert.Equal([-100L, -100, -100, -100, -100, -100, -100, 5303, 612, 198], example.Labels);
        Assert.Equal("User|:| hello|⏎|Assistant|:| |[hi| there|⏎]", Show(Gpt2, example, "|"));
    }

    [Fact]
    public void TheHeaderKeepsItsSpaceSoTheModelIsTrainedRightAfterTheGenerationPrompt()
    {
        // Tokenized in one piece, GPT-2 would write "Assistant: hi" with the token " hi", while the generation
        // prompt "Assistant: " ends in a lone " ": the model would never be trained after the prompt it is given.
        var builder = Builder(Gpt2, ChatTemplate.Plain);
        var example = builder.Build([U("hello"), A("hi there")]);
        var prompt = builder.BuildGenerationPrompt([U("hello")]);
        Assert.Equal(Gpt2.EncodeToIds(ChatTemplate.Plain.RenderGenerationPrompt([U("hello")])), prompt);
        Assert.Equal(prompt, example.InputIds[..prompt.Length]);
        Assert.Equal(" ", Gpt2.Decode([prompt[^1]]));
        Assert.Equal(prompt.Length, example.TrainedRuns()[0].Start.Value);
        Assert.Equal("hi there" + "\n", Assert.Single(TrainedTexts(Gpt2, example)));
    }

    [Fact]
    public void AHeaderCharacterNeverMergesIntoTheAnswer()
    {
        // Header without a trailing space: in one piece GPT-2 merges the header's ':' with the answer's apostrophe (":'").
        var template = ChatTemplate.Plain with { AssistantHeader = "Assistant:" };
        var example = Builder(Gpt2, template).Build([U("x"), A("'s")]);
        Assert.Equal("User|:| x|⏎|Assistant|:|['s|⏎]", Show(Gpt2, example, "|"));
        Assert.Equal([-100L, -100, -100, -100, -100, -100, 338, 198], example.Labels);
        Assert.Equal("'s" + "\n", Assert.Single(TrainedTexts(Gpt2, example)));
    }

    [Fact]
    public void LeadingSpacesOfAnAnswerAreTrainedButTheHeaderSpaceTokenIsNot()
    {
        var example = Builder(Gpt2, ChatTemplate.Plain).Build([U("Say it"), A("   spaced")]);
        Assert.Equal("User|:| Say| it|⏎|Assistant|:| |[ | | spaced|⏎]", Show(Gpt2, example, "|"));
        Assert.Equal("   spaced\n", Assert.Single(TrainedTexts(Gpt2, example)));
    }

    [Fact]
    public void MultiTurnPlainWithSystem()
    {
        var example = Builder(Gpt2, ChatTemplate.Plain).Build([S("Be brief."), U("What is 2+2?"), A("4"), U("And 3+3?"), A("6.")]);
        Assert.Equal(
            "System|:| Be| brief|.|⏎|User|:| What| is| 2|+|2|?|⏎|Assistant|:| |[4|⏎]|User|:| And| 3|+|3|?|⏎|Assistant|:| |[6|.|⏎]",
            Show(Gpt2, example, "|"));
        long[] labels = [.. Enumerable.Repeat(-100L, 18), 19, 198, .. Enumerable.Repeat(-100L, 11), 21, 13, 198];
        Assert.Equal(labels, example.Labels);
        var last = Builder(Gpt2, ChatTemplate.Plain, new SftOptions { MaxLength = 512, TrainOn = AssistantTurns.Last })
            .Build([S("Be brief."), U("What is 2+2?"), A("4"), U("And 3+3?"), A("6.")]);
        Assert.Equal(["6.\n"], TrainedTexts(Gpt2, last));
        Assert.Equal(example.InputIds, last.InputIds);   // which turns are trained never changes the tokens
    }

    [Fact]
    public void ChatMLWithBpeMarkersTrainsTheWholeImEndButNotTheNewlineAfterIt()
    {
        var example = Builder(Gpt2, ChatTemplate.ChatML).Build([U("hello"), A("hi there")]);
        Assert.Equal(
            "<|||im|_|start|||>|user|⏎|hello|<|||im|_|end|||>|⏎|<|||im|_|start|||>|ass|istant|⏎|[hi| there|<|||im|_|end|||>]|⏎",
            Show(Gpt2, example, "|"));
        Assert.Equal(["hi there<|im_end|>"], TrainedTexts(Gpt2, example));
        // hi=5303, ␣there=612, then "<|im_end|>" as < | im _ end | > = 27 91 320 62 437 91 29; the final "\n" (198) is not trained.
        long[] labels = [.. Enumerable.Repeat(-100L, 28), 5303, 612, 27, 91, 320, 62, 437, 91, 29, -100];
        Assert.Equal(labels, example.Labels);
        var noEnd = Builder(Gpt2, ChatTemplate.ChatML, new SftOptions { MaxLength = 512, TrainEndOfTurn = false }).Build([U("hello"), A("hi there")]);
        Assert.Equal(["hi there"], TrainedTexts(Gpt2, noEnd));
    }

    [Fact]
    public void KeepStartNeverTrainsPartOfAnEndOfTurnMarker()
    {
        // 38 tokens; "hi" is token 28, " there" 29, and "<|im_end|>" is the 7 tokens 30..36.
        SftExample Cut(int maxLength) => Builder(Gpt2, ChatTemplate.ChatML, new SftOptions { MaxLength = maxLength, Truncation = TruncationPolicy.KeepStart })
            .Build([U("hello"), A("hi there")]);
        Assert.Equal(["hi there"], TrainedTexts(Gpt2, Cut(33)));
        Assert.Equal(["hi there"], TrainedTexts(Gpt2, Cut(36)));
        Assert.Equal(["hi there<|im_end|>"], TrainedTexts(Gpt2, Cut(37)));
        Assert.Equal(["hi"], TrainedTexts(Gpt2, Cut(29)));
    }

    [Fact]
    public void MultiByteCharactersSplitAcrossTokensAreTrainedTogether()
    {
        var example = Builder(Gpt2, ChatTemplate.Plain).Build([U("emoji"), A("ok 😀 é")]);
        Assert.Equal("ok 😀 é\n", Assert.Single(TrainedTexts(Gpt2, example)));
        Assert.Equal(5, example.TrainedTokenCount);   // "ok", two byte tokens of " 😀", " é", "\n"
    }

    [Fact]
    public void BeginningOfSequenceSpecialTokenIsKeptAndUntrained()
    {
        var template = ChatTemplate.Plain with { BeginningOfSequence = "<|endoftext|>" };
        var example = Builder(Gpt2, template).Build([U("a"), A("b")]);
        Assert.Equal(50256, example.InputIds[0]);
        Assert.Equal("<|endoftext|>|User|:| a|⏎|Assistant|:| |[b|⏎]", Show(Gpt2, example, "|"));
    }
}
