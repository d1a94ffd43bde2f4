using TorchSharp;

namespace TorchLoss;

/// <summary>Options of <see cref="DistillationLoss"/>, fixed when the module is constructed.</summary>
public sealed record DistillationOptions
{
    /// <summary>The divergence to minimise; <see cref="DistillationDivergence.Forward"/> (KL(teacher‖student)) by default.</summary>
    public DistillationDivergence Divergence { get; init; } = DistillationDivergence.Forward;

    /// <summary>Mixture weight β in [0, 1] of <see cref="DistillationDivergence.JensenShannon"/> (the teacher's share of M); ignored otherwise.</summary>
    public double Beta { get; init; } = 0.5;

    /// <summary>Temperature τ &gt; 0 that divides both the student's and the teacher's logits before the softmax.</summary>
    public double Temperature { get; init; } = 1.0;

    /// <summary>
    /// Multiply the loss by τ² (Hinton et al.), so its gradient keeps the same scale when τ changes and it can be mixed
    /// with a hard-label loss by a fixed weight. The totals of <see cref="DistillationResult"/> are never scaled.
    /// </summary>
    public bool ScaleByTemperatureSquared { get; init; } = true;

    /// <summary>How per-position losses are combined: mean over counted positions, sum, or none (per position).</summary>
    public torch.nn.Reduction Reduction { get; init; } = torch.nn.Reduction.Mean;

    /// <summary>
    /// Next-token positions, as <see cref="CrossEntropyOptions.Causal"/>: both logits are a causal model's output [B, T, V]
    /// on the same tokens, and the loss mask [B, T] is aligned with the tokens (true = this token is learned, e.g. an SFT
    /// assistant mask), so position t counts when token t+1 is learned and the last position never. Callers then pass
    /// the same mask to this loss and to a causal <see cref="TokenCrossEntropy"/>, and never shift it. False (default):
    /// the mask is per position.
    /// </summary>
    public bool Causal { get; init; }

    /// <summary>Which implementation computes the loss; see <see cref="DistillationBackend"/>.</summary>
    public DistillationBackend Backend { get; init; } = DistillationBackend.Auto;

    /// <summary>Forward KL at τ = 1, mean reduction.</summary>
    public static DistillationOptions Default { get; } = new();

    /// <summary>τ² when <see cref="ScaleByTemperatureSquared"/>, else 1: the factor on every per-position divergence.</summary>
    internal double LossFactor => ScaleByTemperatureSquared ? Temperature * Temperature : 1.0;

    internal void Validate()
    {
        if (!Enum.IsDefined(Divergence))
            throw new ArgumentException($"Unknown divergence {Divergence}.", nameof(Divergence));
        if (double.IsNaN(Beta) || Beta < 0 || Beta > 1)
            throw new ArgumentException($"Beta must be in [0, 1], got {Beta}.", nameof(Beta));
        if (!(Temperature > 0) || double.IsInfinity(Temperature))
            throw new ArgumentException($"Temperature must be a finite value > 0, got {Temperature}.", nameof(Temperature));
        if (!Enum.IsDefined(Reduction))
            throw new ArgumentException($"Unknown reduction {Reduction}.", nameof(Reduction));
        if (!Enum.IsDefined(Backend))
            throw new ArgumentException($"Unknown distillation backend {Backend}.", nameof(Backend));
        if (Backend == DistillationBackend.Fused && Divergence != DistillationDivergence.Forward)
            throw new ArgumentException($"DistillationBackend.Fused computes the forward KL only, not {Divergence}; use Auto or LibTorch.", nameof(Backend));
    }
}
