using System.Text.RegularExpressions;

namespace TorchLoss.Examples.Tests.Install;

/// <summary>
/// A newcomer's first steps, as the README's "Install" section gives them: a fresh console project that gets TorchLoss
/// from the packed nupkg (or from a project reference to a clone), runs the Quick start code copied verbatim from the
/// README, and prints its result. On Debian 12 this only works if the native-library fix reaches that project.
/// Both tests build the library, so they share one class and run one after the other.
/// </summary>
public sealed class ConsumerProjectTests : IDisposable
{
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromMinutes(10);
    private readonly string _dir = Directory.CreateTempSubdirectory("torchloss-consumer-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void PackageConsumerRunsTheQuickStart()
    {
        string root = RepositoryPaths.Root;
        DotnetProcess.RunOrFail(root, CommandTimeout, "pack", "src/TorchLoss", "-c", "Release");
        string feed = Path.Combine(root, "artifacts", "packages");
        Assert.True(File.Exists(Path.Combine(feed, "TorchLoss.0.1.0.nupkg")), $"dotnet pack did not write the package into {feed}");

        // TorchLoss comes from a NuGet cache of its own, so the test sees this nupkg, never a copy restored earlier;
        // every other package is read from the machine's cache in place (a fallback folder) instead of a second download.
        string app = CreateConsoleApp("MyApp");
        WriteIsolatedNuGetConfig(_dir);
        DotnetProcess.RunOrFail(app, CommandTimeout, "add", "package", "TorchLoss", "--source", feed);
        DotnetProcess.RunOrFail(app, CommandTimeout, "add", "package", "TorchSharp-cpu");
        Assert.DoesNotContain("ProjectReference", File.ReadAllText(Path.Combine(app, "MyApp.csproj")));
        Assert.True(Directory.Exists(Path.Combine(_dir, "packages", "torchloss", "0.1.0")), "TorchLoss was not restored into the isolated cache");

        AssertQuickStartRuns(app);
    }

    [Fact]
    public void ProjectReferenceConsumerRunsTheQuickStart()
    {
        string app = CreateConsoleApp("RefApp");
        DotnetProcess.RunOrFail(app, CommandTimeout, "add", "reference", Path.Combine(RepositoryPaths.Root, "src", "TorchLoss", "TorchLoss.csproj"));
        DotnetProcess.RunOrFail(app, CommandTimeout, "add", "package", "TorchSharp-cpu");

        AssertQuickStartRuns(app);
        // A second build copies the package's files again; the patched library must still be the one that is loaded.
        AssertQuickStartRuns(app);
    }

    private string CreateConsoleApp(string name)
    {
        DotnetProcess.RunOrFail(_dir, CommandTimeout, "new", "console", "-o", name);
        string app = Path.Combine(_dir, name);
        File.WriteAllText(Path.Combine(app, "Program.cs"), ReadmeQuickStart());
        return app;
    }

    private static void AssertQuickStartRuns(string app)
    {
        var run = DotnetProcess.Run(app, CommandTimeout, "run");
        Assert.True(run.ExitCode == 0, $"dotnet run exited with {run.ExitCode}:\n{run.Output}");
        string expected = ReadmeQuickStartOutput();
        Assert.False(string.IsNullOrWhiteSpace(expected), "README.md's Quick start shows no output line");
        Assert.Contains(expected, run.Output);
    }

    private void WriteIsolatedNuGetConfig(string dir)
    {
        string fallback = Path.Combine(dir, "machine-packages");
        Directory.CreateDirectory(fallback);
        foreach (string package in Directory.EnumerateDirectories(RepositoryPaths.NuGetPackageRoot))
            if (!Path.GetFileName(package).Equals("torchloss", StringComparison.OrdinalIgnoreCase))
                Directory.CreateSymbolicLink(Path.Combine(fallback, Path.GetFileName(package)), package);
        File.WriteAllText(Path.Combine(dir, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <config><add key="globalPackagesFolder" value="{Path.Combine(dir, "packages")}" /></config>
              <fallbackPackageFolders><add key="machine" value="{fallback}" /></fallbackPackageFolders>
            </configuration>
            """);
    }

    /// <summary>The first C# block of the README's "Quick start" section, verbatim.</summary>
    private static string ReadmeQuickStart() =>
        Regex.Match(QuickStartSection(), "```csharp\n(.*?)```", RegexOptions.Singleline).Groups[1].Value;

    /// <summary>The line the README says the Quick start prints (the text block after the code).</summary>
    private static string ReadmeQuickStartOutput() =>
        Regex.Match(QuickStartSection(), "```text\n(.*?)\n```", RegexOptions.Singleline).Groups[1].Value.Trim();

    private static string QuickStartSection()
    {
        string readme = File.ReadAllText(Path.Combine(RepositoryPaths.Root, "README.md"));
        int start = readme.IndexOf("\n## Quick start", StringComparison.Ordinal);
        Assert.True(start >= 0, "README.md has no Quick start section");
        int end = readme.IndexOf("\n## ", start + 1, StringComparison.Ordinal);
        return readme[start..(end < 0 ? readme.Length : end)];
    }
}
