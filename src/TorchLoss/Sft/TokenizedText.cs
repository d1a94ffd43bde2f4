using Microsoft.ML.Tokenizers;

namespace TorchLoss.Sft;

/// <summary>
/// A text tokenized once, with each token's character range in the text as given (not in the tokenizer's
/// normalized form), and proof that the tokens encode that text exactly.
/// </summary>
internal sealed class TokenizedText
{
    private const char SentencePieceSpace = '\u2581';

    private TokenizedText(string text, int[] ids, int[] starts, int[] ends)
    {
        Text = text;
        Ids = ids;
        Starts = starts;
        Ends = ends;
    }

    public string Text { get; }

    public int[] Ids { get; }

    /// <summary>Per token, its first character in <see cref="Text"/>.</summary>
    public int[] Starts { get; }

    /// <summary>Per token, one past its last character in <see cref="Text"/> (equal to the start for tokens that stand for no text, such as an added BOS).</summary>
    public int[] Ends { get; }

    public int Count => Ids.Length;

    /// <exception cref="ArgumentException">The tokenizer cannot encode <paramref name="text"/> exactly.</exception>
    public static TokenizedText Encode(Tokenizer tokenizer, string text)
    {
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
        CheckCoverage(tokenizer, text, starts, ends);
        CheckRoundTrip(tokenizer, text, ids);
        return new TokenizedText(text, ids, starts, ends);
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
            if (j < original.Length && Equivalent(n, original[j]))
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

    private static bool Equivalent(char normalized, char original) =>
        normalized == original
        || char.ToLowerInvariant(normalized) == char.ToLowerInvariant(original)
        || (normalized == SentencePieceSpace && char.IsWhiteSpace(original));

    private static void CheckCoverage(Tokenizer tokenizer, string text, int[] starts, int[] ends)
    {
        int covered = 0;
        for (int i = 0; i < starts.Length; i++)
        {
            if (starts[i] > covered && !IsSkippableWhitespace(text, covered, starts[i]))
                throw Unencodable(tokenizer, text, covered);
            covered = Math.Max(covered, ends[i]);
        }
        if (covered < text.Length && !IsSkippableWhitespace(text, covered, text.Length))
            throw Unencodable(tokenizer, text, covered);
    }

    // Normalizers that collapse whitespace leave spaces with no token; losing them is what the tokenizer does to any text.
    private static bool IsSkippableWhitespace(string text, int start, int end)
    {
        for (int k = start; k < end; k++)
            if (!char.IsWhiteSpace(text[k])) return false;
        return true;
    }

    private static void CheckRoundTrip(Tokenizer tokenizer, string text, int[] ids)
    {
        var decoded = tokenizer.Decode(ids);
        if (string.Equals(decoded, text, StringComparison.Ordinal) || SameUpToWhitespace(decoded, text))
            return;
        int at = 0;
        while (at < decoded.Length && at < text.Length && decoded[at] == text[at]) at++;
        throw Unencodable(tokenizer, text, at);
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
