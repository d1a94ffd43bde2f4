using System.Buffers;
using Microsoft.ML.Tokenizers;
using TorchLoss.Sft;

namespace TorchLoss.Sft.Tests;

public class CharTokenizerTests
{
    [Fact]
    public void VocabularyIsSpecialTokensThenDistinctCharactersInOrdinalOrder()
    {
        var tokenizer = new CharTokenizer("banana", ["<pad>", "<eot>"]);
        Assert.Equal(5, tokenizer.VocabularySize);
        Assert.Equal(["<pad>", "<eot>", "a", "b", "n"], Enumerable.Range(0, 5).Select(tokenizer.GetToken));
        Assert.Equal(1, tokenizer.GetId("<eot>"));
        Assert.Equal(4, tokenizer.GetId("n"));
        Assert.Equal(2, tokenizer.SpecialTokens.Count);
    }

    [Fact]
    public void EncodesWithExactOffsetsAndMatchesSpecialTokensWhole()
    {
        var tokenizer = new CharTokenizer("ab", ["<e>", "<end>"]);
        var tokens = tokenizer.EncodeToTokens("a<end>b<e>", out string? normalized);
        Assert.Null(normalized);
        Assert.Equal([2, 1, 3, 0], tokens.Select(t => t.Id));
        Assert.Equal([(0, 1), (1, 5), (6, 1), (7, 3)], tokens.Select(t => t.Offset.GetOffsetAndLength(10)));
        Assert.Equal(["a", "<end>", "b", "<e>"], tokens.Select(t => t.Value));
    }

    [Fact]
    public void SurrogatePairIsOneTokenCoveringTwoChars()
    {
        var tokenizer = new CharTokenizer("a😀");
        var tokens = tokenizer.EncodeToTokens("😀a😀", out _);
        Assert.Equal(3, tokens.Count);
        Assert.Equal([(0, 2), (2, 1), (3, 2)], tokens.Select(t => t.Offset.GetOffsetAndLength(5)));
        Assert.Equal("😀a😀", tokenizer.Decode(tokens.Select(t => t.Id)));
    }

    [Fact]
    public void RoundTripsThroughTheTokenizerAbstraction()
    {
        Tokenizer tokenizer = new CharTokenizer("hello world");
        var ids = tokenizer.EncodeToIds("low hello");
        Assert.Equal(9, ids.Count);
        Assert.Equal(9, tokenizer.CountTokens("low hello"));
        Assert.Equal("low hello", tokenizer.Decode(ids));
    }

    [Fact]
    public void MaxTokenCountAndIndexByTokenCount()
    {
        var tokenizer = new CharTokenizer("abc", ["<x>"]);
        var ids = tokenizer.EncodeToIds("ab<x>c", 3, out _, out int consumed);
        Assert.Equal([1, 2, 0], ids);
        Assert.Equal(5, consumed);
        Assert.Equal(5, tokenizer.GetIndexByTokenCount("ab<x>c", 3, out _, out int count));
        Assert.Equal(3, count);
        Assert.Equal(2, tokenizer.GetIndexByTokenCountFromEnd("ab<x>c", 2, out _, out count));
        Assert.Equal(2, count);
    }

    [Fact]
    public void SpanDecodeReportsTooSmallDestinationAndInvalidIds()
    {
        var tokenizer = new CharTokenizer("ab", ["<eot>"]);
        var buffer = new char[4];
        Assert.Equal(OperationStatus.DestinationTooSmall, tokenizer.Decode([1, 0], buffer, out int used, out int written));
        Assert.Equal((1, 1), (used, written));
        Assert.Equal(OperationStatus.Done, tokenizer.Decode([1, 2], buffer, out used, out written));
        Assert.Equal("ab", new string(buffer, 0, written));
        Assert.Equal(OperationStatus.InvalidData, tokenizer.Decode([7], buffer, out _, out _));
        Assert.Throws<ArgumentException>(() => tokenizer.Decode([7]));
    }

    [Fact]
    public void UnknownCharacterThrowsNamingIt()
    {
        var tokenizer = new CharTokenizer("abc");
        Assert.False(tokenizer.CanEncode("abz"));
        Assert.True(tokenizer.CanEncode("cab"));
        var e = Assert.Throws<ArgumentException>(() => tokenizer.EncodeToIds("abz"));
        Assert.Contains("'z' (U+007A) at index 2", e.Message);
        Assert.Throws<ArgumentException>(() => tokenizer.GetId("z"));
    }

    [Fact]
    public void BadSpecialTokensAreRejected()
    {
        Assert.Throws<ArgumentException>(() => new CharTokenizer("a", [""]));
        Assert.Throws<ArgumentException>(() => new CharTokenizer("a", ["<x>", "<x>"]));
        Assert.Throws<ArgumentException>(() => new CharTokenizer("a\uD800"));
    }
}
