namespace TorchLoss.TestSupport;

/// <summary>A fact that is skipped, saying why, on operating systems other than Linux.</summary>
public sealed class LinuxFactAttribute : FactAttribute
{
    /// <summary>Sets <see cref="FactAttribute.Skip"/> off Linux, with <paramref name="whyLinuxOnly"/> as the reason.</summary>
    public LinuxFactAttribute(string whyLinuxOnly)
    {
        if (!OperatingSystem.IsLinux()) Skip = "Linux only: " + whyLinuxOnly;
    }
}
