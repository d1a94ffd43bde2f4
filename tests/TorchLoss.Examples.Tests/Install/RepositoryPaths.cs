using System.Reflection;

namespace TorchLoss.Examples.Tests.Install;

/// <summary>Where the repository and the machine's NuGet cache are, seen from the test's output folder.</summary>
internal static class RepositoryPaths
{
    /// <summary>The folder that holds TorchLoss.sln.</summary>
    public static string Root { get; } = FindRoot();

    /// <summary>The global NuGet packages folder restore used for this build.</summary>
    public static string NuGetPackageRoot { get; } = FindPackageRoot();

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "TorchLoss.sln")))
                return dir.FullName;
        throw new DirectoryNotFoundException($"No TorchLoss.sln above {AppContext.BaseDirectory}.");
    }

    private static string FindPackageRoot()
    {
        string? recorded = typeof(RepositoryPaths).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == "NuGetPackageRoot")?.Value;
        if (!string.IsNullOrEmpty(recorded) && Directory.Exists(recorded)) return recorded;
        return Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } env
            ? env
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
    }
}
