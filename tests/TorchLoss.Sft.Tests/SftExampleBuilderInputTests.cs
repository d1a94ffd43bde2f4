using System.Buffers;
using Microsoft.ML.Tokenizers;
using TorchLoss.Sft;
using static TorchLoss.Sft.Tests.SftTestKit;

namespace TorchLoss.Sft.Tests;

/// <summary>Every bad input gets a clear error; skip-worthy conversations are skipped and counted by <see cref="SftExampleBuilder.BuildMany"/>.</summary>
public class SftExampleBuilderInputTests
{
    private static readonly SftExampleBuilder Plain = Builder(Chars, ChatTemplate.Plain);

    [Fact]
    public void MalformedConversationsThrowArgumentExceptions()
    {
        Assert.Throws<ArgumentNullException>(() => Plain.Build(null!));
        Assert.Contains("empty", Assert.Throws<ArgumentException>(() => Plain.Build([])).Message);
        Assert.Contains("no assistant", Assert.Throws<ArgumentException>(() => Plain.Build([S("s"), U("u")])).Message);
        Assert.Contains("ends with a user", Assert.Throws<ArgumentException>(() => Plain.Build([U("u"), A("a"), U("again")])).Message);
        Assert.Contains("unknown role 5", Assert.Throws<ArgumentException>(() => Plain.Build([new ChatMessage((ChatRole)5, "x"), A("a")])).Message);
        Assert.Contains("null", Assert.Throws<ArgumentException>(() => Plain.Build([U("u"), null!, A("a")])).Message);
        Assert.Contains("null", Assert.Throws<ArgumentException>(() => Plain.Build([U(null!), A("a")])).Message);
        Assert.Contains("system message", Assert.Throws<ArgumentException>(() => Plain.Build([U("u"), S("s"), A("a")])).Message);
        Assert.Contains("end-of-turn", Assert.Throws<ArgumentException>(() => Plain.Build([U("u"), A("two\nlines")])).Message);
    }

    [Fact]
    public void MalformedGenerationPromptsThrowArgumentExceptions()
    {
        Assert.Throws<ArgumentNullException>(() => Plain.BuildGenerationPrompt((IReadOnlyList<ChatMessage>)null!));
        Assert.Contains("must not end with an assistant message", Assert.Throws<ArgumentException>(() => Plain.BuildGenerationPrompt([U("u"), A("a")])).Message);
        Assert.Contains("end-of-turn", Assert.Throws<ArgumentException>(() => Plain.BuildGenerationPrompt([U("two\nlines")])).Message);
        Assert.Contains("end-of-turn", Assert.Throws<ArgumentException>(() => Plain.BuildGenerationPrompt("two\nlines")).Message);
        Assert.Contains("'é' (U+00E9)", Assert.Throws<ArgumentException>(() => Plain.BuildGenerationPrompt([U("café")])).Message);
        Assert.Equal(Chars.EncodeToIds("Assistant: "), Plain.BuildGenerationPrompt([]));
    }

    [Fact]
    public void TextTheTokenizerCannotEncodeIsReported()
    {
        var e = Assert.Throws<ArgumentException>(() => Plain.Build([U("café"), A("ok")]));
        Assert.Contains("'é' (U+00E9)", e.Message);
        var lossy = Builder(new QuestionMarkForUnknownTokenizer("abcdefghijklmnopqrstuvwxyzAU :\n?"), ChatTemplate.Plain);
        var replaced = Assert.Throws<ArgumentException>(() => lossy.Build([U("café"), A("ok")]));
        Assert.Contains("cannot encode the text exactly", replaced.Message);
        Assert.Contains("index 9", replaced.Message);
    }

    [Fact]
    public void NothingToTrainIsAnSftExampleExceptionNotANaN()
    {
        var builder = Builder(Chars, ChatTemplate.Plain, new SftOptions { MaxLength = 64, TrainEndOfTurn = false });
        var e = Assert.Throws<SftExampleException>(() => builder.Build([U("u"), A("")]));
        Assert.Equal(SftRejection.NoTrainedTokens, e.Reason);
    }

    [Fact]
    public void BadOptionsAreRejected()
    {
        Assert.Throws<ArgumentException>(() => Builder(Chars, ChatTemplate.Plain, new SftOptions { MaxLength = 1 }));
        Assert.Throws<ArgumentException>(() => Builder(Chars, ChatTemplate.Plain, new SftOptions { MaxLength = 8, Truncation = (TruncationPolicy)9 }));
        Assert.Throws<ArgumentException>(() => Builder(Chars, ChatTemplate.Plain, new SftOptions { MaxLength = 8, TrainOn = (AssistantTurns)9 }));
        Assert.Throws<ArgumentNullException>(() => new SftExampleBuilder(null!, ChatTemplate.Plain, new SftOptions { MaxLength = 8 }));
    }

    [Fact]
    public void BuildManySkipsAndCountsWhatYieldsNoExample()
    {
        var builder = Builder(Chars, ChatTemplate.Plain, new SftOptions { MaxLength = 30, TrainEndOfTurn = false });
        var result = builder.BuildMany(
        [
            [U("a"), A("b")],
            [U("a"), A("")],                                                       // nothing to train
            [U("this question is far too long to fit"), A("b")],                   // too long even alone
            [U("q1"), A("a1"), U("q2"), A("a2")],                                   // fits after dropping q1/a1
        ]);
        Assert.Equal(2, result.Examples.Count);
        Assert.Equal(1, result.SkippedNoTrainedTokens);
        Assert.Equal(1, result.SkippedTooLong);
        Assert.Equal(2, result.Skipped);
        Assert.Equal(1, result.Truncated);
        Assert.Equal(3, result.TrainedTokenCount);   // "b", "a2"
    }

    [Fact]
    public void BuildManyStillThrowsForMalformedInputAndForTheErrorPolicy()
    {
        var e = Assert.Throws<ArgumentException>(() => Plain.BuildMany([[U("a"), A("b")], [U("no answer")]]));
        Assert.StartsWith("Conversation 1:", e.Message);
        var strict = Builder(Chars, ChatTemplate.Plain, new SftOptions { MaxLength = 10, Truncation = TruncationPolicy.Error });
        Assert.Equal(SftRejection.TooLong, Assert.Throws<SftExampleException>(() => strict.BuildMany([[U("a long question"), A("b")]])).Reason);
    }

    [Fact]
    public void OffsetsOfANormalizingTokenizerAreMappedBackToTheConversation()
    {
        // SentencePiece-style: a dummy-prefix '▁', spaces written as '▁', offsets into the normalized text.
        var tokenizer = new SentencePieceStyleTokenizer(Alphabet);
        var example = Builder(tokenizer, ChatTemplate.Plain).Build([U("hello"), A("hi there")]);
        var reference = Builder(Chars, ChatTemplate.Plain).Build([U("hello"), A("hi there")]);
        // The normalizer adds a dummy-prefix '▁' to every segment it encodes: before the prompt, the answer and
        // the marker. The last two belong to trained segments, so the model learns to write them, exactly as
        // it will see them after the generation prompt; the same characters are trained otherwise.
        Assert.Equal(reference.Length + 3, example.Length);
        Assert.False(example.IsTrained(0));
        Assert.Equal(reference.TrainedTokenCount + 2, example.TrainedTokenCount);
        Assert.Equal(["hi there\n"], TrainedTexts(Chars, reference));
        Assert.Equal(["hi there \n"], TrainedTexts(tokenizer, example));   // decoding drops the first '▁' only
    }

    /// <summary>A lossy tokenizer: characters outside its alphabet become '?', so decoding does not give the text back.</summary>
    private sealed class QuestionMarkForUnknownTokenizer(string alphabet) : Tokenizer
    {
        private readonly CharTokenizer _inner = new(alphabet);

        protected override EncodeResults<EncodedToken> EncodeToTokens(string? text, ReadOnlySpan<char> textSpan, EncodeSettings settings)
        {
            var source = text ?? textSpan.ToString();
            var tokens = source.Select((c, i) =>
            {
                var piece = _inner.CanEncode(c.ToString()) ? c.ToString() : "?";
                return new EncodedToken(_inner.GetId(piece), piece, i..(i + 1));
            }).ToList();
            return new EncodeResults<EncodedToken> { Tokens = tokens, CharsConsumed = source.Length };
        }

        public override OperationStatus Decode(IEnumerable<int> ids, Span<char> destination, out int idsConsumed, out int charsWritten) =>
            _inner.Decode(ids, destination, out idsConsumed, out charsWritten);

        public override string Decode(IEnumerable<int> ids) => _inner.Decode(ids);
    }

    /// <summary>Normalizes like SentencePiece and reports offsets into the normalized text, as SentencePiece tokenizers do.</summary>
    private sealed class SentencePieceStyleTokenizer(string alphabet) : Tokenizer
    {
        private readonly CharTokenizer _inner = new(alphabet + "\u2581");
        private readonly SentencePieceNormalizer _normalizer = new(removeExtraWhiteSpaces: false, addDummyPrefix: true, escapeWhiteSpaces: true, treatWhitespaceAsSuffix: false, specialTokens: null);

        protected override EncodeResults<EncodedToken> EncodeToTokens(string? text, ReadOnlySpan<char> textSpan, EncodeSettings settings)
        {
            var normalized = _normalizer.Normalize(text ?? textSpan.ToString());
            var tokens = _inner.EncodeToTokens(normalized, out _);
            return new EncodeResults<EncodedToken> { Tokens = tokens, NormalizedText = normalized, CharsConsumed = normalized.Length };
        }

        public override OperationStatus Decode(IEnumerable<int> ids, Span<char> destination, out int idsConsumed, out int charsWritten) =>
            _inner.Decode(ids, destination, out idsConsumed, out charsWritten);

        public override string Decode(IEnumerable<int> ids)
        {
            var text = _inner.Decode(ids).Replace('\u2581', ' ');
            return text.StartsWith(' ') ? text[1..] : text;
        }
    }
}
