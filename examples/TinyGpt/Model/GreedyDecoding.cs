using static TorchSharp.torch;

namespace TinyGpt;

/// <summary>Greedy continuations of many prompts of different lengths, batched: what the chat examples score answers with.</summary>
public static class GreedyDecoding
{
    /// <summary>
    /// Continues every prompt by <paramref name="newTokens"/> greedy tokens, in batches of up to <paramref name="batchSize"/>
    /// prompts of similar length (sorted, so each batch pads little); the result is in the prompts' order.
    /// </summary>
    public static int[][] ContinueAll(Gpt model, IReadOnlyList<int[]> prompts, int newTokens, int batchSize = 64)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        var result = new int[prompts.Count][];
        var order = Enumerable.Range(0, prompts.Count).OrderBy(i => prompts[i].Length).ToArray();
        foreach (var chunk in order.Chunk(batchSize))
        {
            var continuations = Continue(model, chunk.Select(i => prompts[i]).ToList(), newTokens);
            for (int row = 0; row < chunk.Length; row++)
                result[chunk[row]] = continuations[row];
        }
        return result;
    }

    /// <summary>
    /// Greedy continuations of prompts of different lengths in one batch: rows are padded on the right and
    /// each row reads the logits at its own last token. Under a causal mask the padding after a row's tokens
    /// never changes what those tokens see, so this equals decoding each prompt alone.
    /// </summary>
    /// <exception cref="ArgumentException">The longest prompt plus the new tokens exceeds the model's context.</exception>
    public static List<int[]> Continue(Gpt model, IReadOnlyList<int[]> prompts, int newTokens)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(prompts);
        bool wasTraining = model.training;
        model.eval();
        try
        {
            using var noGrad = no_grad();
            using var scope = NewDisposeScope();
            int rows = prompts.Count;
            int width = prompts.Max(p => p.Length) + newTokens;
            if (width > model.Config.ContextLength)
                throw new ArgumentException($"A prompt of {prompts.Max(p => p.Length)} tokens plus {newTokens} new ones exceeds the context of {model.Config.ContextLength}.", nameof(prompts));
            var buffer = new long[rows * width];
            var lengths = prompts.Select(p => p.Length).ToArray();
            for (int r = 0; r < rows; r++)
                for (int t = 0; t < prompts[r].Length; t++)
                    buffer[r * width + t] = prompts[r][t];
            var output = prompts.Select(_ => new int[newTokens]).ToList();
            for (int step = 0; step < newTokens; step++)
            {
                using var stepScope = NewDisposeScope();
                int used = lengths.Max();
                var ids = tensor(buffer, [rows, width], ScalarType.Int64)[.., ..used];
                var last = tensor(lengths.Select(l => (long)l - 1).ToArray(), ScalarType.Int64);
                var logits = model.forward(ids)[arange(rows, ScalarType.Int64), last];
                var next = logits.argmax(-1).data<long>().ToArray();
                for (int r = 0; r < rows; r++)
                {
                    buffer[r * width + lengths[r]] = next[r];
                    output[r][step] = (int)next[r];
                    lengths[r]++;
                }
            }
            return output;
        }
        finally
        {
            model.train(wasTraining);
        }
    }
}
