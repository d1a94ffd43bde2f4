namespace TorchLoss;

/// <summary>How label smoothing spreads the probability mass ε taken from the true class.</summary>
/// <remarks>
/// For ε = 0.1 and K = 3 classes with the true class first:
/// <list type="bullet">
/// <item><see cref="Uniform"/> gives the target (0.9333, 0.0333, 0.0333).</item>
/// <item><see cref="OtherClasses"/> gives the target (0.9, 0.05, 0.05).</item>
/// </list>
/// <see cref="OtherClasses"/> with ε equals <see cref="Uniform"/> with ε·K/(K−1).
/// </remarks>
public enum SmoothingKind
{
    /// <summary>PyTorch's convention: target = (1−ε)·onehot + ε/K on every class, the true one included.</summary>
    Uniform,

    /// <summary>The convention many tutorials describe: the true class gets 1−ε, each of the other K−1 classes ε/(K−1).</summary>
    OtherClasses,
}
