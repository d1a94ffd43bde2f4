using System.Buffers;
using System.Text;
using Microsoft.ML.Tokenizers;

namespace TorchLoss.Sft;

/// <summary>
/// A character-level tokenizer: one token per distinct character (Unicode scalar value, so a surrogate pair
/// is one token spanning two chars) of a training text, plus named special tokens that are matched whole
/// before single characters. It plugs in wherever a <see cref="Tokenizer"/> is expected and reports exact
/// character offsets. Text with a character outside the vocabulary cannot be encoded and throws.
/// </summary>
/// <remarks>
/// It lives in the TorchLoss.Sft package, not in TorchLoss, because it derives from Microsoft.ML.Tokenizers'
/// <see cref="Tokenizer"/>: placing it in TorchLoss would make every user of the losses depend on that package.
/// </remarks>
/// <example>
/// <code>
/// var tokenizer = new CharTokenizer(allTrainingText, ["&lt;|pad|&gt;"]);
/// IReadOnlyList&lt;int&gt; ids = tokenizer.EncodeToIds("hello");
/// </code>
/// </example>
public sealed class CharTokenizer : Tokenizer
{
    private readonly Dictionary<int, int> _idOfScalar = [];
    private readonly Dictionary<string, int> _specialIds = new(StringComparer.Ordinal);
    private readonly string[] _textOfId;

    /// <summary>Builds the vocabulary: special tokens first (ids 0, 1, ... in the given order), then the distinct characters of <paramref name="text"/> in ordinal order.</summary>
    /// <param name="text">Every character the tokenizer must encode.</param>
    /// <param name="specialTokens">Multi-character tokens encoded as one id, such as "&lt;|im_end|&gt;"; null for none.</param>
    /// <exception cref="ArgumentException">A special token is empty or repeated, or <paramref name="text"/> holds an unpaired surrogate.</exception>
    public CharTokenizer(string text, IEnumerable<string>? specialTokens = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        var texts = new List<string>();
        foreach (var special in specialTokens ?? [])
        {
            if (string.IsNullOrEmpty(special))
                throw new ArgumentException("Special tokens must be non-empty strings.", nameof(specialTokens));
            if (!_specialIds.TryAdd(special, texts.Count))
                throw new ArgumentException($"The special token \"{special}\" is given twice.", nameof(specialTokens));
            texts.Add(special);
        }
        var scalars = new SortedSet<int>();
        for (int i = 0; i < text.Length;)
        {
            if (Rune.DecodeFromUtf16(text.AsSpan(i), out var rune, out int used) != OperationStatus.Done)
                throw new ArgumentException($"The text holds an unpaired surrogate (U+{(int)text[i]:X4}) at index {i}.", nameof(text));
            scalars.Add(rune.Value);
            i += used;
        }
        foreach (int scalar in scalars)
        {
            _idOfScalar[scalar] = texts.Count;
            texts.Add(new Rune(scalar).ToString());
        }
        _textOfId = [.. texts];
        // Longest first, so "<|im_end|>" wins over a special token that is its prefix.
        SpecialTokensLongestFirst = [.. _specialIds.Keys.OrderByDescending(s => s.Length).ThenBy(s => s, StringComparer.Ordinal)];
    }

    /// <summary>The number of ids: special tokens plus distinct characters.</summary>
    public int VocabularySize => _textOfId.Length;

    /// <summary>The special tokens and their ids.</summary>
    public IReadOnlyDictionary<string, int> SpecialTokens => _specialIds;

    private string[] SpecialTokensLongestFirst { get; }

    /// <summary>The id of a special token or of a single character.</summary>
    /// <exception cref="ArgumentException">The vocabulary has no such token.</exception>
    public int GetId(string token)
    {
        ArgumentNullException.ThrowIfNull(token);
        if (_specialIds.TryGetValue(token, out int id))
            return id;
        if (Rune.DecodeFromUtf16(token, out var rune, out int used) == OperationStatus.Done && used == token.Length && _idOfScalar.TryGetValue(rune.Value, out id))
            return id;
        throw new ArgumentException($"The vocabulary has no token \"{Escape(token)}\".", nameof(token));
    }

    /// <summary>The text of an id.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The id is not in the vocabulary.</exception>
    public string GetToken(int id)
    {
        if ((uint)id >= (uint)_textOfId.Length)
            throw new ArgumentOutOfRangeException(nameof(id), id, $"Token ids run from 0 to {_textOfId.Length - 1}.");
        return _textOfId[id];
    }

    /// <summary>Whether every character of <paramref name="text"/> (outside special tokens) is in the vocabulary.</summary>
    public bool CanEncode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        for (int i = 0; i < text.Length;)
        {
            if (!TryNextToken(text, i, out _, out int length))
                return false;
            i += length;
        }
        return true;
    }

    /// <inheritdoc/>
    /// <exception cref="ArgumentException">The text holds a character outside the vocabulary.</exception>
    protected override EncodeResults<EncodedToken> EncodeToTokens(string? text, ReadOnlySpan<char> textSpan, EncodeSettings settings)
    {
        var source = text ?? textSpan.ToString();
        var tokens = new List<EncodedToken>();
        int i = 0;
        while (i < source.Length && tokens.Count < settings.MaxTokenCount)
        {
            int length = Next(source, i, out int id);
            tokens.Add(new EncodedToken(id, _textOfId[id], i..(i + length)));
            i += length;
        }
        return new EncodeResults<EncodedToken> { Tokens = tokens, NormalizedText = null, CharsConsumed = i };
    }

    /// <inheritdoc/>
    /// <exception cref="ArgumentException">The text holds a character outside the vocabulary.</exception>
    protected override EncodeResults<int> EncodeToIds(string? text, ReadOnlySpan<char> textSpan, EncodeSettings settings)
    {
        var source = text ?? textSpan.ToString();
        var ids = new List<int>();
        int i = 0;
        while (i < source.Length && ids.Count < settings.MaxTokenCount)
        {
            i += Next(source, i, out int id);
            ids.Add(id);
        }
        return new EncodeResults<int> { Tokens = ids, NormalizedText = null, CharsConsumed = i };
    }

    /// <inheritdoc/>
    /// <exception cref="ArgumentException">The text holds a character outside the vocabulary.</exception>
    protected override int CountTokens(string? text, ReadOnlySpan<char> textSpan, EncodeSettings settings) =>
        EncodeToIds(text, textSpan, settings).Tokens.Count;

    /// <inheritdoc/>
    /// <exception cref="ArgumentException">The text holds a character outside the vocabulary.</exception>
    protected override int GetIndexByTokenCount(string? text, ReadOnlySpan<char> textSpan, EncodeSettings settings, bool fromEnd, out string? normalizedText, out int tokenCount)
    {
        normalizedText = null;
        var source = text ?? textSpan.ToString();
        var starts = new List<int>();
        for (int i = 0; i < source.Length;)
        {
            starts.Add(i);
            i += Next(source, i, out _);
        }
        tokenCount = Math.Min(settings.MaxTokenCount, starts.Count);
        if (!fromEnd)
            return tokenCount == starts.Count ? source.Length : starts[tokenCount];
        return tokenCount == 0 ? source.Length : starts[starts.Count - tokenCount];
    }

    /// <inheritdoc/>
    /// <exception cref="ArgumentException">An id is not in the vocabulary.</exception>
    public override string Decode(IEnumerable<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var builder = new StringBuilder();
        foreach (int id in ids)
        {
            if ((uint)id >= (uint)_textOfId.Length)
                throw new ArgumentException($"Token id {id} is outside the vocabulary (0 to {_textOfId.Length - 1}).", nameof(ids));
            builder.Append(_textOfId[id]);
        }
        return builder.ToString();
    }

    /// <inheritdoc/>
    public override OperationStatus Decode(IEnumerable<int> ids, Span<char> destination, out int idsConsumed, out int charsWritten)
    {
        ArgumentNullException.ThrowIfNull(ids);
        idsConsumed = 0;
        charsWritten = 0;
        foreach (int id in ids)
        {
            if ((uint)id >= (uint)_textOfId.Length)
                return OperationStatus.InvalidData;
            var piece = _textOfId[id];
            if (piece.Length > destination.Length - charsWritten)
                return OperationStatus.DestinationTooSmall;
            piece.CopyTo(destination[charsWritten..]);
            charsWritten += piece.Length;
            idsConsumed++;
        }
        return OperationStatus.Done;
    }

    private int Next(string text, int index, out int id)
    {
        if (TryNextToken(text, index, out id, out int length))
            return length;
        int codePoint = char.IsSurrogate(text[index]) && index + 1 < text.Length ? char.ConvertToUtf32(text[index], text[index + 1]) : text[index];
        throw new ArgumentException(
            $"CharTokenizer cannot encode '{Escape(char.ConvertFromUtf32(codePoint))}' (U+{codePoint:X4}) at index {index}: it is not in the vocabulary of {VocabularySize} tokens. Build the tokenizer from text that contains every character to encode.",
            nameof(text));
    }

    private bool TryNextToken(string text, int index, out int id, out int length)
    {
        foreach (var special in SpecialTokensLongestFirst)
        {
            if (text.AsSpan(index).StartsWith(special, StringComparison.Ordinal))
            {
                id = _specialIds[special];
                length = special.Length;
                return true;
            }
        }
        if (Rune.DecodeFromUtf16(text.AsSpan(index), out var rune, out length) == OperationStatus.Done && _idOfScalar.TryGetValue(rune.Value, out id))
            return true;
        id = -1;
        length = 0;
        return false;
    }

    internal static string Escape(string text) =>
        text.Replace("\\", "\\\\").Replace("\n", "\\n").Replace("\r", "\\r").Replace("\t", "\\t");
}
