using Microsoft.ML.Tokenizers;
using TinyGpt;
using static TorchSharp.torch;

namespace TinyLM;

/// <summary>
/// The embedded corpus's generator as a distillation teacher: at every position its logits are log p of the exact
/// next-character distribution (see <see cref="MarkovTextSource.NextDistribution(string, IReadOnlyList{char})"/>) and −∞ for characters the source
/// cannot emit there, so CE(source, model) = H(source) + KL(source‖model) is measured exactly, not estimated from samples.
/// </summary>
public sealed class SourceTeacher
{
    private readonly MarkovTextSource source;
    private readonly char[] characterOf;
    private readonly Dictionary<char, int> idOf;
    private readonly Dictionary<string, float[]> logitsOfHistory = new(StringComparer.Ordinal);

    /// <summary>Creates the teacher for a character <paramref name="tokenizer"/> of <paramref name="vocabularySize"/> ids.</summary>
    /// <exception cref="ArgumentException">A token is not a single character.</exception>
    public SourceTeacher(MarkovTextSource source, Tokenizer tokenizer, int vocabularySize)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(tokenizer);
        this.source = source;
        characterOf = new char[vocabularySize];
        idOf = [];
        for (int id = 0; id < vocabularySize; id++)
        {
            string text = tokenizer.Decode([id]);
            if (text.Length != 1)
                throw new ArgumentException($"Distilling from the source needs one character per token; token {id} is '{text}'.", nameof(tokenizer));
            characterOf[id] = text[0];
            idOf[text[0]] = id;
        }
    }

    /// <summary>The teacher's logits [B, T, V] (float32) for token ids [B, T]: position t holds the distribution of token t+1.</summary>
    public Tensor Logits(Tensor ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        long rows = ids.shape[0], length = ids.shape[1];
        int vocabulary = characterOf.Length;
        var values = new float[rows * length * vocabulary];
        var flat = ids.cpu().data<long>().ToArray();
        var history = new char[length];
        for (long r = 0; r < rows; r++)
        {
            for (long t = 0; t < length; t++)
            {
                history[t] = characterOf[flat[r * length + t]];
                int from = (int)Math.Max(0, t + 1 - source.Order);
                var row = LogitsAfter(new string(history, from, (int)t + 1 - from));
                Array.Copy(row, 0, values, (r * length + t) * vocabulary, vocabulary);
            }
        }
        return tensor(values, [rows, length, vocabulary]).to(ids.device);
    }

    private float[] LogitsAfter(string history)
    {
        if (logitsOfHistory.TryGetValue(history, out var cached))
            return cached;
        var logits = new float[characterOf.Length];
        Array.Fill(logits, float.NegativeInfinity);
        var (next, probabilities) = source.NextDistribution(history);
        for (int i = 0; i < next.Length; i++)
            logits[idOf[next[i]]] = (float)Math.Log(probabilities[i]);
        logitsOfHistory[history] = logits;
        return logits;
    }
}
