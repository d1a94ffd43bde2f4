using Microsoft.ML.Tokenizers;

namespace TorchLoss.Sft;

/// <summary>
/// A text tokenized piece by piece, with the segment each token came from and proof that each segment's
/// tokens encode exactly its text.
/// </summary>
/// <remarks>
/// Each segment between two boundaries is encoded alone and the ids are concatenated, so no token crosses a
/// boundary and the tokens of a segment never depend on the text after it: the ids of any prefix that ends at
/// a boundary are a prefix of the ids of the whole text.
/// </remarks>
internal sealed class TokenizedText
{
    private const char SentencePieceSpace = '\u2581';

    private TokenizedText(int[] ids, CharSpan[] segments)
    {
        Ids = ids;
        Segments = segments;
    }

    public int[] Ids { get; }

    /// <summary>
    /// Per token, the segment it was encoded in. Tokens of one segment are consecutive. Which part of the text
    /// a token belongs to is decided by this, not by its offsets, which byte-level BPE leaves empty for the
    /// first pieces of a character it splits.
    /// </summary>
    public CharSpan[] Segments { get; }

    public int Count => Ids.Length;

    /// <summary>Encodes <paramref name="text"/> in segments cut at <paramref name="boundaries"/> (character positions, any order; 0, the end and repeats are ignored).</summary>
    /// <remarks>
    /// Whatever the tokenizer adds to every text it encodes (a beginning-of-sequence token, SentencePiece's
    /// dummy-prefix space) it adds to every segment. Nothing is dropped here: a token with no characters of its
    /// own can also be the first byte of a character that byte-level BPE splits, and dropping that would corrupt the text.
    /// </remarks>
    /// <exception cref="ArgumentException">The tokenizer cannot encode a segment exactly.</exception>
    public static TokenizedText Encode(Tokenizer tokenizer, string text, IEnumerable<int> boundaries)
    {
        var cuts = boundaries.Where(b => b > 0 && b < text.Length).Append(text.Length).Distinct().Order();
        var ids = new List<int>();
        var segments = new List<CharSpan>();
        int from = 0;
        foreach (int to in cuts)
        {
            var segmentIds = EncodeSegment(tokenizer, text, from, to);
            ids.AddRange(segmentIds);
            segments.AddRange(Enumerable.Repeat(new CharSpan(from, to), segmentIds.Length));
            from = to;
        }
        return new TokenizedText([.. ids], [.. segments]);
    }

    /// <summary>
    /// Encodes <c>whole[from..to]</c> alone and proves the ids encode exactly that text: the tokens' offsets
    /// (mapped back through the normalizer) leave nothing but whitespace uncovered, and the ids decode back to
    /// it. Errors name positions in <paramref name="whole"/>.
    /// </summary>
    private static int[] EncodeSegment(Tokenizer tokenizer, string whole, int from, int to)
    {
        var text = whole[from..to];
        var tokens = tokenizer.EncodeToTokens(text, out string? normalized);
        int count = tokens.Count;
        var ids = new int[count];
        var starts = new int[count];
        var ends = new int[count];
        var frame = normalized ?? text;
        int[]? toOriginal = normalized is not null && !string.Equals(normalized, text, StringComparison.Ordinal)
            ? AlignNormalized(text, normalized)
            : null;
        for (int i = 0; i < count; i++)
        {
            var (offset, length) = tokens[i].Offset.GetOffsetAndLength(frame.Length);
            ids[i] = tokens[i].Id;
            starts[i] = toOriginal is null ? offset : toOriginal[offset];
            ends[i] = toOriginal is null ? offset + length : toOriginal[offset + length];
        }
        CheckCoverage(tokenizer, whole, from, to, starts, ends);
        CheckRoundTrip(tokenizer, whole, from, to, ids);
        return ids;
    }

    /// <summary>
    /// Maps each position of the normalized text (and one past its end) to a position of the original:
    /// handles case folding, whitespace written as SentencePiece's '▁', an inserted dummy-prefix space and
    /// collapsed whitespace. Anything else is refused rather than guessed.
    /// </summary>
    internal static int[] AlignNormalized(string original, string normalized)
    {
        var map = new int[normalized.Length + 1];
        int i = 0, j = 0;
        while (i < normalized.Length)
        {
            char n = normalized[i];
            if (j < original.Length && Equivalent(n, original[j]) && !IsInsertedBefore(normalized, i, original[j]))
            {
                map[i++] = j++;
            }
            else if (n == SentencePieceSpace || char.IsWhiteSpace(n))
            {
                map[i++] = j;   // inserted whitespace (a dummy prefix) belongs to the character that follows it
            }
            else if (j < original.Length && char.IsWhiteSpace(original[j]))
            {
                j++;            // whitespace the normalizer removed
            }
            else
            {
                throw new ArgumentException(
                    $"The tokenizer's normalizer rewrote the text in a way whose offsets cannot be mapped back (normalized index {i} '{CharTokenizer.Escape(n.ToString())}' vs original index {j}). " +
                    "Use a tokenizer without that normalization, or render text that is already normalized.");
            }
        }
        while (j < original.Length && char.IsWhiteSpace(original[j])) j++;
        if (j != original.Length)
            throw new ArgumentException($"The tokenizer's normalizer dropped text from index {j} on; its offsets cannot be mapped back to the conversation.");
        map[normalized.Length] = original.Length;
        return map;
    }

    // A '▁' facing a newline or tab is the dummy prefix when the newline itself comes next: "\n" becomes "▁\n", not "▁".
    private static bool IsInsertedBefore(string normalized, int i, char original) =>
        (normalized[i] == SentencePieceSpace || char.IsWhiteSpace(normalized[i])) && normalized[i] != original
        && i + 1 < normalized.Length && normalized[i + 1] == original;

    private static bool Equivalent(char normalized, char original) =>
        normalized == original
        || char.ToLowerInvariant(normalized) == char.ToLowerInvariant(original)
        || (normalized == SentencePieceSpace && char.IsWhiteSpace(original));

    private static void CheckCoverage(Tokenizer tokenizer, string whole, int from, int to, int[] starts, int[] ends)
    {
        int covered = from;
        for (int i = 0; i < starts.Length; i++)
        {
            if (from + starts[i] > covered && !IsSkippableWhitespace(whole, covered, from + starts[i]))
                throw Unencodable(tokenizer, whole, covered);
            covered = Math.Max(covered, from + ends[i]);
        }
        if (covered < to && !IsSkippableWhitespace(whole, covered, to))
            throw Unencodable(tokenizer, whole, covered);
    }

    // Normalizers that collapse whitespace leave spaces with no token; losing them is what the tokenizer does to any text.
    private static bool IsSkippableWhitespace(string text, int start, int end)
    {
        for (int k = start; k < end; k++)
            if (!char.IsWhiteSpace(text[k])) return false;
        return true;
    }

    private static void CheckRoundTrip(Tokenizer tokenizer, string whole, int from, int to, int[] ids)
    {
        var decoded = tokenizer.Decode(ids);
        var text = whole[from..to];
        if (string.Equals(decoded, text, StringComparison.Ordinal) || SameUpToWhitespace(decoded, text))
            return;
        int at = 0;
        while (at < decoded.Length && at < text.Length && decoded[at] == text[at]) at++;
        throw Unencodable(tokenizer, whole, from + at);
    }

    /// <summary>Equal once runs of whitespace are ignored: what a SentencePiece dummy prefix or whitespace collapsing changes.</summary>
    internal static bool SameUpToWhitespace(string a, string b) =>
        string.Equals(string.Concat(a.Where(c => !char.IsWhiteSpace(c))), string.Concat(b.Where(c => !char.IsWhiteSpace(c))), StringComparison.Ordinal);

    private static ArgumentException Unencodable(Tokenizer tokenizer, string text, int index)
    {
        var what = index < text.Length ? $"'{CharTokenizer.Escape(text[index].ToString())}' (U+{(int)text[index]:X4})" : "the end of the text";
        var context = CharTokenizer.Escape(text.Substring(Math.Max(0, index - 20), Math.Min(text.Length, index + 20) - Math.Max(0, index - 20)));
        return new ArgumentException(
            $"{tokenizer.GetType().Name} cannot encode the text exactly: {what} at index {index} is lost or replaced (near \"{context}\"). Its tokens would not decode back to the conversation.");
    }
}
