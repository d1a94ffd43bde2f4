using System.Text.Json;
using TorchLoss.TestSupport;

namespace TorchLoss.Examples.Tests.Install;

/// <summary>
/// On Linux the repository's projects restore only the Linux part of the libtorch CPU backend (Directory.Build.targets,
/// <c>UseTorchCpuBackend</c>). A project that references <c>TorchSharp-cpu</c> itself brings back its macOS and
/// Windows libraries (331 + 288 MiB of NuGet cache) into every project that references it.
/// </summary>
public sealed class BackendPackageTests
{
    [LinuxFact("elsewhere every project takes TorchSharp-cpu whole.")]
    public void No_project_restores_the_macOS_or_Windows_libtorch()
    {
        var assetFiles = SolutionProjects()
            .Select(project => Path.Combine(Path.GetDirectoryName(project)!, "obj", "project.assets.json"))
            .Where(File.Exists)
            .ToList();
        Assert.NotEmpty(assetFiles);   // dotnet test restored the solution, so this build has them

        var offenders = new List<string>();
        foreach (string assets in assetFiles)
        {
            using var json = JsonDocument.Parse(File.ReadAllText(assets));
            foreach (var library in json.RootElement.GetProperty("libraries").EnumerateObject())
            {
                string name = library.Name.ToLowerInvariant();
                if (name.StartsWith("libtorch-cpu-win-x64/", StringComparison.Ordinal) || name.StartsWith("libtorch-cpu-osx-arm64/", StringComparison.Ordinal))
                    offenders.Add($"{Path.GetRelativePath(RepositoryPaths.Root, assets)}: {library.Name}");
            }
        }
        Assert.True(offenders.Count == 0,
            "These projects restore libtorch for other operating systems; give them <UseTorchCpuBackend>true</UseTorchCpuBackend> " +
            "instead of a TorchSharp-cpu reference:\n" + string.Join('\n', offenders));
    }

    private static IEnumerable<string> SolutionProjects() =>
        File.ReadLines(Path.Combine(RepositoryPaths.Root, "TorchLoss.sln"))
            .Where(line => line.StartsWith("Project(", StringComparison.Ordinal))
            .Select(line => line.Split('"')[5].Replace('\\', Path.DirectorySeparatorChar))
            .Where(path => path.EndsWith(".csproj", StringComparison.Ordinal))
            .Select(path => Path.Combine(RepositoryPaths.Root, path));
}
