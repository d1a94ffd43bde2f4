namespace TorchLoss;

/// <summary>Defaults shared by every loss of the library.</summary>
public static class LossDefaults
{
    /// <summary>The label value that is not counted (PyTorch's default, -100).</summary>
    public const long IgnoreIndex = -100;
}
