using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace TinyGpt;

/// <summary>
/// A small GPT-2 style decoder: token and position embeddings, pre-norm blocks of causal self-attention and
/// an MLP, a final LayerNorm, and a linear head that shares its weight with the token embedding.
/// </summary>
/// <remarks>
/// The whole model is in this file so it reads top to bottom. <see cref="forward"/> returns logits;
/// <see cref="Hidden"/> and <see cref="HeadWeight"/> are the two halves of it, for a loss that fuses the
/// head with the cross-entropy.
/// </remarks>
public sealed class Gpt : Module<Tensor, Tensor>
{
    // `a + b` in TorchSharp 0.107 passes a temporary Scalar(1) that the GC may finalize while libtorch is still reading
    // it (a rare "Expected false to be true ... toFloat" under GC pressure; dotnet/TorchSharp#1434). The model's adds
    // use one Scalar that lives as long as the process instead.
    private static readonly Scalar One = 1;

    private readonly Embedding wte;
    private readonly Embedding wpe;
    private readonly Dropout drop;
    private readonly ModuleList<Block> blocks;
    private readonly LayerNorm ln_f;

    /// <summary>Builds the model with GPT-2's initialisation, drawing from the global torch generator (seed it first).</summary>
    public Gpt(GptConfig config) : base(nameof(Gpt))
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Config = config;
        wte = Embedding(config.VocabSize, config.Dim);
        wpe = Embedding(config.ContextLength, config.Dim);
        drop = Dropout(config.Dropout);
        blocks = new ModuleList<Block>(Enumerable.Range(0, config.Layers).Select(_ => new Block(config)).ToArray());
        ln_f = LayerNorm(config.Dim);
        RegisterComponents();
        InitWeights();
    }

    /// <summary>The configuration the model was built with.</summary>
    public GptConfig Config { get; }

    /// <summary>The output projection [V, D]: the token embedding, tied as in GPT-2.</summary>
    public Parameter HeadWeight => wte.weight!;

    /// <summary>Number of trainable values.</summary>
    public long ParameterCount => parameters().Sum(p => p.numel());

    /// <summary>Logits [B, T, V] for token ids [B, T]; position t scores the token at t+1.</summary>
    public override Tensor forward(Tensor ids)
    {
        using var scope = NewDisposeScope();
        return functional.linear(Hidden(ids), HeadWeight).MoveToOuterDisposeScope();
    }

    /// <summary>The final normalised hidden states [B, T, D] for token ids [B, T], before the head.</summary>
    /// <exception cref="ArgumentException"><paramref name="ids"/> is not [B, T] or is longer than the context.</exception>
    public Tensor Hidden(Tensor ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        if (ids.dim() != 2)
            throw new ArgumentException($"ids must be [B, T], got [{string.Join(", ", ids.shape)}].", nameof(ids));
        long t = ids.shape[1];
        if (t > Config.ContextLength)
            throw new ArgumentException($"Sequence length {t} exceeds the context length {Config.ContextLength}.", nameof(ids));
        using var scope = NewDisposeScope();
        var positions = arange(t, dtype: ScalarType.Int64, device: ids.device);
        var x = drop.forward(wte.forward(ids).add(wpe.forward(positions), One));
        foreach (var block in blocks)
            x = block.forward(x);
        return ln_f.forward(x).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Continues each row of <paramref name="ids"/> [B, t] by <paramref name="maxNewTokens"/> sampled tokens. Temperature 0
    /// picks the most likely token; <paramref name="topK"/> &gt; 0 samples only among the k most likely. Samples in eval mode (no dropout) and then restores the model's training mode.
    /// </summary>
    /// <remarks>
    /// Training on windows of <see cref="GptConfig.ContextLength"/> tokens with unshifted labels teaches positions
    /// 0 … ContextLength-2 to predict (the last position has no next token), so generation feeds back at most the last
    /// ContextLength-1 tokens: the last position's output was never trained.
    /// </remarks>
    public Tensor Generate(Tensor ids, int maxNewTokens, double temperature = 1.0, int topK = 0, Generator? generator = null)
    {
        ArgumentNullException.ThrowIfNull(ids);
        if (maxNewTokens < 0)
            throw new ArgumentException($"maxNewTokens must be ≥ 0, got {maxNewTokens}.", nameof(maxNewTokens));
        if (double.IsNaN(temperature) || temperature < 0)
            throw new ArgumentException($"temperature must be ≥ 0, got {temperature}.", nameof(temperature));
        if (topK < 0)
            throw new ArgumentException($"topK must be ≥ 0, got {topK}.", nameof(topK));
        bool wasTraining = training;
        eval();
        try
        {
            return Sample(ids, maxNewTokens, temperature, topK, generator);
        }
        finally
        {
            // Sampling mid-training must not leave dropout switched off for the steps that follow.
            train(wasTraining);
        }
    }

    private Tensor Sample(Tensor ids, int maxNewTokens, double temperature, int topK, Generator? generator)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var sequence = ids.to(ScalarType.Int64);
        for (int i = 0; i < maxNewTokens; i++)
        {
            using var stepScope = NewDisposeScope();
            int start = (int)Math.Max(0, sequence.shape[1] - (Config.ContextLength - 1));
            var logits = forward(sequence[.., start..])[.., -1, ..];
            Tensor next;
            if (temperature == 0)
            {
                next = logits.argmax(-1, keepdim: true);
            }
            else
            {
                logits = logits / temperature;
                if (topK > 0 && topK < logits.shape[^1])
                {
                    var kth = logits.topk(topK).values[.., ^1..];
                    logits = logits.masked_fill(logits < kth, double.NegativeInfinity);
                }
                next = logits.softmax(-1).multinomial(1, generator: generator);
            }
            sequence = cat([sequence, next], 1).MoveToOuterDisposeScope();
        }
        return sequence.MoveToOuterDisposeScope();
    }

    // GPT-2: N(0, 0.02) everywhere, zero biases, and residual projections scaled by 1/√(2·layers) so the
    // residual stream's variance does not grow with depth.
    private void InitWeights()
    {
        using var noGrad = no_grad();
        double residualStd = 0.02 / Math.Sqrt(2.0 * Config.Layers);
        foreach (var (name, p) in named_parameters())
        {
            if (name.EndsWith("bias", StringComparison.Ordinal))
                p.zero_();
            else if (name.StartsWith("ln", StringComparison.Ordinal) || name.Contains(".ln_", StringComparison.Ordinal))
                p.fill_(1.0);
            else
                p.normal_(0, name.EndsWith("c_proj.weight", StringComparison.Ordinal) ? residualStd : 0.02);
        }
    }

    private sealed class Block : Module<Tensor, Tensor>
    {
        private readonly LayerNorm ln_1;
        private readonly CausalSelfAttention attn;
        private readonly LayerNorm ln_2;
        private readonly Mlp mlp;

        public Block(GptConfig config) : base(nameof(Block))
        {
            ln_1 = LayerNorm(config.Dim);
            attn = new CausalSelfAttention(config);
            ln_2 = LayerNorm(config.Dim);
            mlp = new Mlp(config);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            using var scope = NewDisposeScope();
            x = x.add(attn.forward(ln_1.forward(x)), One);
            x = x.add(mlp.forward(ln_2.forward(x)), One);
            return x.MoveToOuterDisposeScope();
        }
    }

    private sealed class CausalSelfAttention : Module<Tensor, Tensor>
    {
        private readonly Linear c_attn;
        private readonly Linear c_proj;
        private readonly Dropout resid_drop;
        private readonly int heads;
        private readonly double dropout;

        public CausalSelfAttention(GptConfig config) : base(nameof(CausalSelfAttention))
        {
            c_attn = Linear(config.Dim, 3 * config.Dim);
            c_proj = Linear(config.Dim, config.Dim);
            resid_drop = Dropout(config.Dropout);
            heads = config.Heads;
            dropout = config.Dropout;
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            using var scope = NewDisposeScope();
            long b = x.shape[0], t = x.shape[1], d = x.shape[2];
            var qkv = c_attn.forward(x).view(b, t, 3, heads, d / heads).permute(2, 0, 3, 1, 4); // [3, B, H, T, hd]
            var y = functional.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], p: training ? dropout : 0.0, is_casual: true);
            y = y.transpose(1, 2).reshape(b, t, d);
            return resid_drop.forward(c_proj.forward(y)).MoveToOuterDisposeScope();
        }
    }

    private sealed class Mlp : Module<Tensor, Tensor>
    {
        private readonly Linear c_fc;
        private readonly Linear c_proj;
        private readonly Dropout drop;

        public Mlp(GptConfig config) : base(nameof(Mlp))
        {
            c_fc = Linear(config.Dim, 4 * config.Dim);
            c_proj = Linear(4 * config.Dim, config.Dim);
            drop = Dropout(config.Dropout);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            using var scope = NewDisposeScope();
            return drop.forward(c_proj.forward(functional.gelu(c_fc.forward(x)))).MoveToOuterDisposeScope();
        }
    }
}
