using System.Text.RegularExpressions;

namespace TorchLoss.Examples.Tests.Install;

/// <summary>
/// A newcomer's first steps, as the README's "Install" section gives them: fresh console projects that get TorchLoss
/// or TorchLoss.Sft from the packed nupkgs (or from project references to a clone), run the Quick start programs copied
/// verbatim from the README (the first with TorchLoss alone, the second with TorchLoss.Sft alone) and print their
/// results. On Debian 12 this only works if the native-library fix reaches those projects, for TorchLoss.Sft through
/// TorchLoss. Both tests build the libraries, so they share one class and run one after the other.
/// </summary>
public sealed class ConsumerProjectTests : IDisposable
{
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromMinutes(10);
    private static readonly string[] Packages = ["torchloss", "torchloss.sft"];
    private readonly string _dir = Directory.CreateTempSubdirectory("torchloss-consumer-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void PackageConsumerRunsTheQuickStart()
    {
        string root = RepositoryPaths.Root;
        DotnetProcess.RunOrFail(root, CommandTimeout, "pack", "src/TorchLoss", "-c", "Release");
        DotnetProcess.RunOrFail(root, CommandTimeout, "pack", "src/TorchLoss.Sft", "-c", "Release");
        string feed = Path.Combine(root, "artifacts", "packages");
        foreach (string package in new[] { "TorchLoss", "TorchLoss.Sft" })
            Assert.True(File.Exists(Path.Combine(feed, $"{package}.0.1.0.nupkg")), $"dotnet pack did not write {package} into {feed}");

        // The packages come from a NuGet cache of their own, so the test sees these nupkgs, never copies restored
        // earlier; every other package is read from the machine's cache in place (a fallback folder) instead of a
        // second download. NUGET_PACKAGES would override the config's cache, so the children get the isolated one.
        string cache = WriteIsolatedNuGetConfig(_dir);
        var environment = new Dictionary<string, string?> { ["NUGET_PACKAGES"] = cache };
        var apps = new[] { ("MyApp", "TorchLoss", 0), ("MySftApp", "TorchLoss.Sft", 1) };
        foreach (var (name, package, block) in apps)
        {
            string app = CreateConsoleApp(name, block);
            DotnetProcess.RunOrFail(app, CommandTimeout, environment, "add", "package", package, "--source", feed);
            DotnetProcess.RunOrFail(app, CommandTimeout, environment, "add", "package", "TorchSharp-cpu");
            string project = File.ReadAllText(Path.Combine(app, name + ".csproj"));
            Assert.DoesNotContain("ProjectReference", project);
            Assert.Single(Regex.Matches(project, "Include=\"TorchLoss"));   // TorchLoss.Sft brings TorchLoss, and its build step, itself
            Assert.True(Directory.Exists(Path.Combine(cache, package.ToLowerInvariant(), "0.1.0")), $"{package} was not restored into the isolated cache");
            AssertQuickStartRuns(app, block, environment);
        }
    }

    [Fact]
    public void ProjectReferenceConsumerRunsTheQuickStart()
    {
        string app = CreateConsoleApp("RefApp", 0);
        DotnetProcess.RunOrFail(app, CommandTimeout, "add", "reference", Path.Combine(RepositoryPaths.Root, "src", "TorchLoss", "TorchLoss.csproj"));
        DotnetProcess.RunOrFail(app, CommandTimeout, "add", "package", "TorchSharp-cpu");

        AssertQuickStartRuns(app, 0);
        // A second build copies the package's files again; the patched library must still be the one that is loaded.
        AssertQuickStartRuns(app, 0);

        // TorchLoss.Sft alone: TorchLoss, and the patched library it hands to its referencing projects, come through it.
        string sftApp = CreateConsoleApp("RefSftApp", 1);
        DotnetProcess.RunOrFail(sftApp, CommandTimeout, "add", "reference", Path.Combine(RepositoryPaths.Root, "src", "TorchLoss.Sft", "TorchLoss.Sft.csproj"));
        DotnetProcess.RunOrFail(sftApp, CommandTimeout, "add", "package", "TorchSharp-cpu");
        AssertQuickStartRuns(sftApp, 1);
    }

    private string CreateConsoleApp(string name, int block)
    {
        DotnetProcess.RunOrFail(_dir, CommandTimeout, "new", "console", "-o", name);
        string app = Path.Combine(_dir, name);
        File.WriteAllText(Path.Combine(app, "Program.cs"), ReadmeQuickStartBlocks()[block]);
        return app;
    }

    private static void AssertQuickStartRuns(string app, int block, IReadOnlyDictionary<string, string?>? environment = null)
    {
        var run = DotnetProcess.Run(app, CommandTimeout, environment ?? new Dictionary<string, string?>(), "run");
        Assert.True(run.ExitCode == 0, $"dotnet run exited with {run.ExitCode}:\n{run.Output}");
        var outputs = Regex.Matches(QuickStartSection(), "```text\n(.*?)\n```", RegexOptions.Singleline).Select(m => m.Groups[1].Value.Trim()).ToList();
        Assert.True(outputs.Count > block && outputs[block].Length > 0, $"README.md's Quick start shows no output for its C# block {block + 1}");
        Assert.Contains(outputs[block], run.Output);
    }

    // Returns the isolated cache folder.
    private static string WriteIsolatedNuGetConfig(string dir)
    {
        string fallback = Path.Combine(dir, "machine-packages");
        Directory.CreateDirectory(fallback);
        foreach (string package in Directory.EnumerateDirectories(RepositoryPaths.NuGetPackageRoot))
            if (!Packages.Contains(Path.GetFileName(package).ToLowerInvariant()))
                Directory.CreateSymbolicLink(Path.Combine(fallback, Path.GetFileName(package)), package);
        string cache = Path.Combine(dir, "packages");
        File.WriteAllText(Path.Combine(dir, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <config><add key="globalPackagesFolder" value="{cache}" /></config>
              <fallbackPackageFolders><add key="machine" value="{fallback}" /></fallbackPackageFolders>
            </configuration>
            """);
        return cache;
    }

    /// <summary>The C# blocks of the README's "Quick start" section, verbatim: TorchLoss alone, then TorchLoss.Sft.</summary>
    internal static IReadOnlyList<string> ReadmeQuickStartBlocks()
    {
        var blocks = Regex.Matches(QuickStartSection(), "```csharp\n(.*?)```", RegexOptions.Singleline).Select(m => m.Groups[1].Value).ToList();
        Assert.True(blocks.Count == 2, $"README.md's Quick start should have two C# blocks (TorchLoss, TorchLoss.Sft), not {blocks.Count}");
        return blocks;
    }

    private static string QuickStartSection()
    {
        string readme = File.ReadAllText(Path.Combine(RepositoryPaths.Root, "README.md"));
        int start = readme.IndexOf("\n## Quick start", StringComparison.Ordinal);
        Assert.True(start >= 0, "README.md has no Quick start section");
        int end = readme.IndexOf("\n## ", start + 1, StringComparison.Ordinal);
        return readme[start..(end < 0 ? readme.Length : end)];
    }
}
