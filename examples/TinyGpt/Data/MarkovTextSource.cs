using System.Text;

namespace TinyGpt;

/// <summary>
/// A character-level Markov chain of order k whose transition probabilities are the k-gram counts of a seed text
/// read as a circle. Because the seed is circular, the chain's stationary distribution over k-grams is exactly
/// their frequency in the seed, so its entropy rate has a closed form:
/// H = Σ_c π(c) · H(next | c) with π(c) = count(c) / N. No language model can have a lower cross-entropy on
/// text from this source, and a model's excess cross-entropy over H is its KL divergence rate from the source.
/// </summary>
public sealed class MarkovTextSource
{
    private readonly string seed;
    private readonly Dictionary<string, (char[] Next, double[] Probabilities)> transitions;

    /// <summary>Builds the chain of order <paramref name="order"/> from <paramref name="seedText"/>.</summary>
    /// <exception cref="ArgumentException">The seed is not longer than the order, or the order is below 1.</exception>
    public MarkovTextSource(string seedText, int order)
    {
        ArgumentNullException.ThrowIfNull(seedText);
        if (order < 1)
            throw new ArgumentException($"order must be at least 1, got {order}.", nameof(order));
        if (seedText.Length <= order)
            throw new ArgumentException($"The seed text needs more than {order} characters, got {seedText.Length}.", nameof(seedText));
        seed = seedText;
        Order = order;
        var counts = new Dictionary<string, Dictionary<char, int>>(StringComparer.Ordinal);
        foreach (var (context, next) in CircularGrams(order))
        {
            if (!counts.TryGetValue(context, out var nexts))
                counts[context] = nexts = [];
            nexts[next] = nexts.GetValueOrDefault(next) + 1;
        }
        transitions = counts.ToDictionary(
            kv => kv.Key,
            kv =>
            {
                var ordered = kv.Value.OrderBy(p => p.Key).ToArray();
                double total = ordered.Sum(p => p.Value);
                return (ordered.Select(p => p.Key).ToArray(), ordered.Select(p => p.Value / total).ToArray());
            },
            StringComparer.Ordinal);
        EntropyRate = -transitions.Sum(kv => ContextProbability(kv.Key) * kv.Value.Probabilities.Sum(p => p * Math.Log(p)));
    }

    /// <summary>The order k: how many preceding characters determine the next one's distribution.</summary>
    public int Order { get; }

    /// <summary>The distinct characters the source emits.</summary>
    public IReadOnlyList<char> Alphabet => seed.Distinct().Order().ToArray();

    /// <summary>Number of k-gram contexts (states of the chain).</summary>
    public int ContextCount => transitions.Count;

    /// <summary>The exact entropy rate in nats per character: the lowest achievable cross-entropy.</summary>
    public double EntropyRate { get; }

    /// <summary>
    /// H(X_j | X_0 … X_{j-1}) for a character j positions into a window that starts with no history (stationary start):
    /// the marginal (j+1)-gram entropy minus the j-gram entropy; equal to <see cref="EntropyRate"/> from j = k on.
    /// </summary>
    public double ConditionalEntropy(int position)
    {
        if (position < 0)
            throw new ArgumentOutOfRangeException(nameof(position), position, "must be ≥ 0");
        if (position >= Order)
            return EntropyRate;
        return GramEntropy(position + 1) - GramEntropy(position);
    }

    /// <summary>
    /// The lowest cross-entropy a model can reach when scored on windows of <paramref name="context"/> characters that each
    /// start without history (positions 1 … context-1 are predicted): slightly above <see cref="EntropyRate"/>, because the
    /// first k-1 predictions of each window see less than k characters.
    /// </summary>
    public double WindowedFloor(int context)
    {
        if (context < 2)
            throw new ArgumentOutOfRangeException(nameof(context), context, "must be ≥ 2");
        double sum = 0;
        for (int j = 1; j < context; j++)
            sum += ConditionalEntropy(j);
        return sum / (context - 1);
    }

    /// <summary><paramref name="length"/> characters from the chain, starting at a k-gram drawn from its stationary distribution.</summary>
    public string Generate(int length, SplitMix64 rng)
    {
        ArgumentNullException.ThrowIfNull(rng);
        if (length < Order)
            throw new ArgumentException($"length must be at least the order {Order}, got {length}.", nameof(length));
        int start = (int)rng.NextInt64(seed.Length);
        var text = new StringBuilder(length);
        for (int i = 0; i < Order; i++)
            text.Append(seed[(start + i) % seed.Length]);
        var context = new char[Order];
        while (text.Length < length)
        {
            text.CopyTo(text.Length - Order, context, 0, Order);
            var (next, probabilities) = transitions[new string(context)];
            double u = rng.NextDouble();
            int pick = 0;
            for (double cumulative = probabilities[0]; pick < next.Length - 1 && u >= cumulative; cumulative += probabilities[++pick]) { }
            text.Append(next[pick]);
        }
        return text.ToString();
    }

    /// <summary>
    /// The exact distribution of the character after <paramref name="history"/>: the chain's transition from its last
    /// k characters, or, when it holds fewer (the start of a window, which begins at a stationary point), the
    /// stationary conditional P(next | those j characters) = count(history + next) / count(history) of the circular seed.
    /// </summary>
    /// <exception cref="ArgumentException">The source never emits <paramref name="history"/>'s last characters.</exception>
    public (char[] Next, double[] Probabilities) NextDistribution(string history)
    {
        ArgumentNullException.ThrowIfNull(history);
        if (history.Length >= Order)
        {
            string context = history[^Order..];
            return transitions.TryGetValue(context, out var row)
                ? row
                : throw new ArgumentException($"The source never emits the context '{context}'.", nameof(history));
        }
        string circle = seed + seed[..(history.Length + 1)];
        var counts = new SortedDictionary<char, int>();
        for (int i = 0; i < seed.Length; i++)
        {
            if (string.CompareOrdinal(circle, i, history, 0, history.Length) == 0)
                counts[circle[i + history.Length]] = counts.GetValueOrDefault(circle[i + history.Length]) + 1;
        }
        if (counts.Count == 0)
            throw new ArgumentException($"The source never emits '{history}'.", nameof(history));
        double total = counts.Values.Sum();
        return (counts.Keys.ToArray(), counts.Values.Select(c => c / total).ToArray());
    }

    /// <summary>Σ log P(x_t | the k characters before it) over t = k … end: the exact log-likelihood of <paramref name="text"/> after its first k characters.</summary>
    /// <exception cref="ArgumentException">The text contains a transition the source never makes.</exception>
    public double LogLikelihood(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        double sum = 0;
        for (int t = Order; t < text.Length; t++)
        {
            string context = text.Substring(t - Order, Order);
            if (!transitions.TryGetValue(context, out var row) || Array.IndexOf(row.Next, text[t]) is var i && i < 0)
                throw new ArgumentException($"The source never emits '{text[t]}' after '{context}' (position {t}).", nameof(text));
            sum += Math.Log(row.Probabilities[i]);
        }
        return sum;
    }

    /// <summary>
    /// The source's exact distribution of the character that follows <paramref name="context"/> (the k characters
    /// before it), as probabilities over <paramref name="alphabet"/>; characters it never emits there get 0.
    /// </summary>
    /// <exception cref="ArgumentException">The context is not k characters long or never occurs in the source.</exception>
    public double[] NextDistribution(string context, IReadOnlyList<char> alphabet)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(alphabet);
        if (context.Length != Order || !transitions.TryGetValue(context, out var row))
            throw new ArgumentException($"'{context}' is not a context of this order-{Order} source.", nameof(context));
        var distribution = new double[alphabet.Count];
        for (int i = 0; i < row.Next.Length; i++)
        {
            int index = -1;
            for (int a = 0; a < alphabet.Count && index < 0; a++)
                if (alphabet[a] == row.Next[i]) index = a;
            if (index < 0)
                throw new ArgumentException($"The alphabet lacks '{row.Next[i]}', which the source emits after '{context}'.", nameof(alphabet));
            distribution[index] = row.Probabilities[i];
        }
        return distribution;
    }

    private double ContextProbability(string context) => (double)CircularCount(context) / seed.Length;

    private int CircularCount(string gram)
    {
        int count = 0;
        string circle = seed + seed[..Math.Min(seed.Length, gram.Length)];
        for (int i = 0; i < seed.Length; i++)
        {
            if (string.CompareOrdinal(circle, i, gram, 0, gram.Length) == 0)
                count++;
        }
        return count;
    }

    // Entropy of the stationary j-gram distribution, which for j ≤ k+1 is the j-gram frequency of the circular seed.
    private double GramEntropy(int j)
    {
        if (j == 0)
            return 0;
        string circle = seed + seed[..j];
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < seed.Length; i++)
        {
            string gram = circle.Substring(i, j);
            counts[gram] = counts.GetValueOrDefault(gram) + 1;
        }
        return -counts.Values.Sum(c => (double)c / seed.Length * Math.Log((double)c / seed.Length));
    }

    private IEnumerable<(string Context, char Next)> CircularGrams(int order)
    {
        string circle = seed + seed[..order];
        for (int i = 0; i < seed.Length; i++)
            yield return (circle.Substring(i, order), circle[i + order]);
    }
}
