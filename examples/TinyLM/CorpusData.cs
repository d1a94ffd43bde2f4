using TinyGpt;

namespace TinyLM;

/// <summary>A tokenized corpus split into training and validation tokens.</summary>
/// <param name="Description">What the corpus is, for logs and the summary.</param>
/// <param name="Tokenizer">How text became ids.</param>
/// <param name="Train">Training tokens (the first 90%).</param>
/// <param name="Validation">Validation tokens (the last 10%).</param>
/// <param name="Source">The generating source when the corpus is the embedded synthetic one.</param>
/// <param name="DefaultPrompt">A prompt that makes sense for this corpus.</param>
public sealed record CorpusData(string Description, ITokenizer Tokenizer, int[] Train, int[] Validation, MarkovTextSource? Source, string DefaultPrompt)
{
    /// <summary>Loads the corpus the options name, tokenizes it and splits it 90/10.</summary>
    /// <exception cref="CorpusException">The file is missing, empty, or too short for one context window in each split.</exception>
    public static CorpusData Load(TinyLmOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        string text, description;
        MarkovTextSource? source = null;
        if (options.Corpus is null)
        {
            source = SyntheticCorpus.Source;
            text = SyntheticCorpus.Generate((ulong)options.Seed);
            description = $"embedded synthetic corpus: {text.Length:N0} characters from an order-{source.Order} character Markov chain ({source.ContextCount} contexts)";
        }
        else
        {
            if (!File.Exists(options.Corpus))
                throw new CorpusException($"Corpus file '{options.Corpus}' does not exist.");
            try
            {
                text = File.ReadAllText(options.Corpus);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new CorpusException($"Corpus file '{options.Corpus}' cannot be read: {e.Message}");
            }
            if (text.Length == 0)
                throw new CorpusException($"Corpus file '{options.Corpus}' is empty.");
            description = $"{Path.GetFileName(options.Corpus)}: {text.Length:N0} characters";
        }

        ITokenizer tokenizer = options.Tokenizer == "gpt2" ? new Gpt2Tokenizer() : CharTokenizer.FromText(text);
        var ids = tokenizer.Encode(text);
        int split = (int)(ids.Length * 0.9);
        var train = ids[..split];
        var validation = ids[split..];
        if (train.Length < options.Context || validation.Length < 2)
        {
            throw new CorpusException(
                $"The corpus is too short: {ids.Length:N0} tokens give {train.Length:N0} training tokens (at least one context window of {options.Context} needed) " +
                $"and {validation.Length:N0} validation tokens (at least 2 needed). Use a longer text or a smaller --context.");
        }
        string prompt = source is not null ? "the " : text.Contains('\n') ? "\n" : text[..1];
        return new CorpusData(description, tokenizer, train, validation, source, prompt);
    }
}
