using TorchLoss.Metrics;
using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss.Tests.Metrics;

public class PerplexityEvaluatorTests
{
    private const int Vocab = 6;
    private const int Context = 8;

    /// <summary>A bigram language model: p(next | previous) is a fixed table, so every conditional probability is known exactly.</summary>
    private sealed class BigramModel : nn.Module<Tensor, Tensor>
    {
        private readonly Tensor _logTable;

        public BigramModel(double[,] table) : base(nameof(BigramModel))
        {
            var flat = new double[Vocab * Vocab];
            Buffer.BlockCopy(table, 0, flat, 0, flat.Length * sizeof(double));
            _logTable = tensor(flat, [Vocab, Vocab]).log().DetachFromDisposeScope();
            RegisterComponents();
        }

        public bool SawGradEnabled { get; private set; }

        public override Tensor forward(Tensor ids)
        {
            SawGradEnabled |= is_grad_enabled();
            return _logTable.index_select(0, ids.flatten()).reshape(ids.shape[0], ids.shape[1], Vocab);
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing) _logTable.Dispose();
            base.Dispose(disposing);
        }
    }

    private static double[,] Table(int seed)
    {
        var random = new Random(seed);
        var table = new double[Vocab, Vocab];
        for (int a = 0; a < Vocab; a++)
        {
            double sum = 0;
            for (int b = 0; b < Vocab; b++) sum += table[a, b] = 0.05 + random.NextDouble();
            for (int b = 0; b < Vocab; b++) table[a, b] /= sum;
        }
        return table;
    }

    private static long[] Text(int length, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, length).Select(_ => (long)random.Next(Vocab)).ToArray();
    }

    /// <summary>exp of the mean of −log p(x_t | x_{t−1}) over the predicted positions t.</summary>
    private static double ClosedForm(double[,] table, long[] text, Func<int, bool> predicted)
    {
        double nll = 0;
        int count = 0;
        for (int t = 1; t < text.Length; t++)
        {
            if (!predicted(t)) continue;
            nll -= Math.Log(table[text[t - 1], text[t]]);
            count++;
        }
        return Math.Exp(nll / count);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(Context / 2)]
    [InlineData(Context)]
    public void MatchesTheClosedFormOfABigramModel(int stride)
    {
        var table = Table(1);
        long[] text = Text(37, 2);   // not a multiple of the context: the last window is short
        using var model = new BigramModel(table);
        using var ids = tensor(text);

        var result = new PerplexityEvaluator(Context, stride, batchSize: 3).Evaluate(model.forward, ids);

        // With overlap every token after the first is predicted once; disjoint windows leave each window's first token unscored.
        Func<int, bool> predicted = stride < Context ? _ => true : t => t % Context != 0;
        int expectedTokens = Enumerable.Range(1, text.Length - 1).Count(predicted);
        Assert.Equal(expectedTokens, result.Tokens);
        Assert.Equal(ClosedForm(table, text, predicted), result.Perplexity, 10);
        Assert.False(model.SawGradEnabled);
    }

    /// <summary>Every (length, context, stride) of a grid that starts at the smallest values.</summary>
    public static IEnumerable<(int Length, int Context, int Stride)> Grid() =>
        from context in new[] { 2, 3, 4, 5, 8 }
        from stride in Enumerable.Range(1, context)
        from length in Enumerable.Range(2, 3 * context + 2)
        select (length, context, stride);

    [Fact]
    public void WindowsScoreEveryTokenOnceWithTheOverlapAsContext()
    {
        foreach (var (length, context, stride) in Grid())
        {
            string at = $"length {length}, context {context}, stride {stride}";
            var windows = new PerplexityEvaluator(context, stride).Windows(length);
            var timesScored = new int[length];
            foreach (var w in windows)
            {
                Assert.True(w.Length >= 2 && w.Length <= context, at);
                Assert.True(w.FirstScored >= 1 && w.FirstScored < w.Length, $"{at}: window at {w.Start} scores nothing");
                for (int j = w.FirstScored; j < w.Length; j++) timesScored[w.Start + j]++;
                if (w.Start > 0 && stride < context) Assert.True(w.FirstScored >= context - stride, $"{at}: window at {w.Start} has only {w.FirstScored} context tokens");
            }
            // Disjoint windows skip a last window that would hold only its own unscored first token.
            bool lastTokenAlone = stride == context && length % context == 1;
            Assert.Equal(lastTokenAlone ? length - 1 : length, windows[^1].Start + windows[^1].Length);
            Assert.Equal(0, timesScored[0]);
            for (int t = 1; t < length; t++)
                Assert.True((stride < context || t % context != 0 ? 1 : 0) == timesScored[t], $"{at}: token {t} scored {timesScored[t]} times");
        }
    }

    [Fact]
    public void EvaluatesEveryLengthContextAndStride()
    {
        var table = Table(11);
        using var model = new BigramModel(table);
        foreach (var (length, context, stride) in Grid())
        {
            string at = $"length {length}, context {context}, stride {stride}";
            long[] text = Text(length, length * 31 + context);
            using var ids = tensor(text);
            var result = new PerplexityEvaluator(context, stride, batchSize: 2).Evaluate(model.forward, ids);
            Func<int, bool> predicted = stride < context ? _ => true : t => t % context != 0;
            int expected = Enumerable.Range(1, length - 1).Count(predicted);
            Assert.True(expected == result.Tokens, $"{at}: {result.Tokens} tokens scored, {expected} expected");
            Assert.True(Math.Abs(ClosedForm(table, text, predicted) - result.Perplexity) < 1e-9, at);
        }
    }

    [Fact]
    public void BatchSizeDoesNotChangeTheResult()
    {
        var table = Table(3);
        using var model = new BigramModel(table);
        using var ids = tensor(Text(50, 4));
        var one = new PerplexityEvaluator(Context, 3, batchSize: 1).Evaluate(model.forward, ids);
        var many = new PerplexityEvaluator(Context, 3, batchSize: 5).Evaluate(model.forward, ids);
        Assert.Equal(one.Tokens, many.Tokens);
        Assert.Equal(one.Perplexity, many.Perplexity, 12);
        Assert.True(many.Updates < one.Updates);
    }

    [Fact]
    public void ReportsProgressAndTextNormalisers()
    {
        using var model = new BigramModel(Table(5));
        using var ids = tensor(Text(30, 6));
        var reports = new List<PerplexityEvaluationProgress>();
        var evaluator = new PerplexityEvaluator(Context, 4, batchSize: 2);

        var result = evaluator.Evaluate(model.forward, ids, new SynchronousProgress(reports.Add), utf8Bytes: 100, words: 20);

        long windows = evaluator.Windows(30).Count;
        Assert.Equal(windows, reports[^1].WindowsDone);
        Assert.All(reports, r => Assert.Equal(windows, r.WindowCount));
        Assert.Equal(result.Tokens, reports[^1].TokensScored);
        Assert.Equal(result.Perplexity, reports[^1].Perplexity, 12);
        Assert.True(reports.Zip(reports.Skip(1)).All(p => p.First.WindowsDone < p.Second.WindowsDone));
        Assert.Equal(result.NllSum / (Math.Log(2) * 100), result.BitsPerByte, 12);
        Assert.Equal(Math.Exp(result.NllSum / 20), result.WordPerplexity, 12);
    }

    [Fact]
    public void RejectsBadArguments()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new PerplexityEvaluator(8, 9));
        Assert.Throws<ArgumentOutOfRangeException>(() => new PerplexityEvaluator(8, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new PerplexityEvaluator(1, 1));
        var evaluator = new PerplexityEvaluator(Context, 4);
        using var model = new BigramModel(Table(7));
        using var floats = tensor(new float[] { 1, 2, 3 });
        Assert.Throws<ArgumentException>(() => evaluator.Evaluate(model.forward, floats));
        using var single = tensor(new long[] { 1 });
        Assert.Throws<ArgumentException>(() => evaluator.Evaluate(model.forward, single));
        using var ids = tensor(Text(20, 8));
        var error = Assert.Throws<ArgumentException>(() => evaluator.Evaluate(x => zeros(x.shape[0], x.shape[1]), ids));
        Assert.Contains("[B, T, V]", error.Message);
    }

    [Fact]
    public void EvaluationDoesNotLeak()
    {
        using var model = new BigramModel(Table(9));
        using var ids = tensor(Text(25, 10));
        var evaluator = new PerplexityEvaluator(Context, 3, batchSize: 2);
        LeakCheck.AssertNoGrowth(() => evaluator.Evaluate(model.forward, ids), 10);
    }

    /// <summary>Unlike <see cref="Progress{T}"/>, reports on the calling thread, so the test sees them all before asserting.</summary>
    private sealed class SynchronousProgress(Action<PerplexityEvaluationProgress> report) : IProgress<PerplexityEvaluationProgress>
    {
        public void Report(PerplexityEvaluationProgress value) => report(value);
    }
}
