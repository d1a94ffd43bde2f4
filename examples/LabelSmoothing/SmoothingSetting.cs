using TorchLoss;

namespace LabelSmoothing;

/// <summary>One training run of the experiment: a label-smoothing ε and how its mass is spread.</summary>
/// <param name="Epsilon">Label smoothing ε; 0 trains on the plain cross-entropy.</param>
/// <param name="Kind">How the ε mass is spread over the classes.</param>
public sealed record SmoothingSetting(double Epsilon, SmoothingKind Kind)
{
    /// <summary>The runs the experiment compares: ε ∈ {0, 0.05, 0.1, 0.2} uniform, and ε = 0.1 over the other classes.</summary>
    public static IReadOnlyList<SmoothingSetting> All { get; } =
    [
        new(0, SmoothingKind.Uniform),
        new(0.05, SmoothingKind.Uniform),
        new(0.1, SmoothingKind.Uniform),
        new(0.2, SmoothingKind.Uniform),
        new(0.1, SmoothingKind.OtherClasses),
    ];

    /// <summary>A short label for tables and charts, e.g. "ε = 0.1 uniform".</summary>
    public string Name => Epsilon == 0 ? "ε = 0 (none)" : $"ε = {Epsilon:0.###} {(Kind == SmoothingKind.Uniform ? "uniform" : "other-classes")}";

    /// <summary>The training loss's options.</summary>
    public CrossEntropyOptions LossOptions => new() { LabelSmoothing = Epsilon, Smoothing = Kind };
}
