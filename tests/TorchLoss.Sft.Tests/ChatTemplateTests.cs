using TorchLoss.Sft;
using static TorchLoss.Sft.Tests.SftTestKit;

namespace TorchLoss.Sft.Tests;

public class ChatTemplateTests
{
    [Fact]
    public void PlainRendersReadableTextAndRecordsEverySpan()
    {
        var rendered = ChatTemplate.Plain.Render([S("Be brief."), U("hello"), A("hi")]);
        Assert.Equal("System: Be brief.\nUser: hello\nAssistant: hi\n", rendered.Text);
        Assert.Equal(new CharSpan(0, 0), rendered.BeginningOfSequence);
        var assistant = rendered.Messages[2];
        Assert.Equal(ChatRole.Assistant, assistant.Role);
        Assert.Equal(2, assistant.MessageIndex);
        Assert.Equal("Assistant: ", assistant.Header.Of(rendered.Text));
        Assert.Equal("hi", assistant.Content.Of(rendered.Text));
        Assert.Equal("\n", assistant.EndOfTurn.Of(rendered.Text));
        Assert.Equal(0, assistant.Separator.Length);
        Assert.Equal("hello", rendered.Messages[1].Content.Of(rendered.Text));
        Assert.Equal("Be brief.", rendered.Messages[0].Content.Of(rendered.Text));
    }

    [Fact]
    public void ChatMLRendersMarkersAndSeparators()
    {
        var template = ChatTemplate.ChatML with { BeginningOfSequence = "<s>" };
        var rendered = template.Render([U("hello"), A("hi")]);
        Assert.Equal("<s><|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\nhi<|im_end|>\n", rendered.Text);
        Assert.Equal("<s>", rendered.BeginningOfSequence.Of(rendered.Text));
        var assistant = rendered.Messages[1];
        Assert.Equal("<|im_start|>assistant\n", assistant.Header.Of(rendered.Text));
        Assert.Equal("<|im_end|>", assistant.EndOfTurn.Of(rendered.Text));
        Assert.Equal("\n", assistant.Separator.Of(rendered.Text));
    }

    [Fact]
    public void GenerationPromptEndsWithTheAssistantHeader()
    {
        Assert.Equal("User: 2+2?\nAssistant: ", ChatTemplate.Plain.RenderGenerationPrompt([U("2+2?")]));
        Assert.Throws<ArgumentException>(() => ChatTemplate.Plain.RenderGenerationPrompt([U("a"), A("b")]));
    }

    [Fact]
    public void CompletionRendersWithoutHeaders()
    {
        var rendered = ChatTemplate.Plain.RenderCompletion("2+2=", "4");
        Assert.Equal("2+2=4\n", rendered.Text);
        Assert.Equal("4", rendered.Messages[1].Content.Of(rendered.Text));
        Assert.Equal("\n", rendered.Messages[1].EndOfTurn.Of(rendered.Text));
    }

    [Fact]
    public void SpanOverlapIsHalfOpen()
    {
        var span = new CharSpan(5, 8);
        Assert.True(span.Overlaps(4, 6));
        Assert.True(span.Overlaps(7, 9));
        Assert.False(span.Overlaps(8, 9));
        Assert.False(span.Overlaps(3, 5));
        Assert.False(span.Overlaps(6, 6));
        Assert.False(new CharSpan(5, 5).Overlaps(0, 10));
    }

    [Fact]
    public void BadMessagesAreRejectedWithClearErrors()
    {
        var plain = ChatTemplate.Plain;
        Assert.Contains("end-of-turn", Assert.Throws<ArgumentException>(() => plain.Render([U("two\nlines"), A("x")])).Message);
        Assert.Contains("end-of-turn", Assert.Throws<ArgumentException>(() => ChatTemplate.ChatML.Render([U("a"), A("x<|im_end|>")])).Message);
        Assert.Contains("system message", Assert.Throws<ArgumentException>(() => plain.Render([U("a"), S("b"), A("c")])).Message);
        Assert.Contains("unknown role", Assert.Throws<ArgumentException>(() => plain.Render([new ChatMessage((ChatRole)7, "a")])).Message);
        Assert.Contains("null", Assert.Throws<ArgumentException>(() => plain.Render([U(null!)])).Message);
        Assert.Contains("null", Assert.Throws<ArgumentException>(() => plain.Render([null!])).Message);
        Assert.Throws<ArgumentException>(() => plain.RenderCompletion("a\nb", "c"));
    }

    [Fact]
    public void BadTemplatesAreRejected()
    {
        Assert.Throws<ArgumentException>(() => (ChatTemplate.Plain with { EndOfTurn = "" }).Validate());
        Assert.Throws<ArgumentException>(() => (ChatTemplate.Plain with { AssistantHeader = "User: " }).Validate());
        Assert.Throws<ArgumentException>(() => (ChatTemplate.Plain with { UserHeader = "" }).Validate());
        Assert.Throws<ArgumentException>(() => (ChatTemplate.Plain with { TurnSeparator = null! }).Validate());
        Assert.Throws<ArgumentException>(() => Builder(Chars, ChatTemplate.Plain with { EndOfTurn = "" }));
    }
}
