using System.Text;
using TorchLoss.Examples.Tests.Install;

namespace TorchLoss.Examples.Tests.SkyIsBlue;

/// <summary>
/// Runs the SkyIsBlue program from a copy of this test's output whose libLibTorchSharp.so is NuGet's original,
/// not the build's patched copy. Where the host's libstdc++ lacks GLIBCXX_3.4.32 the program must stop with
/// <see cref="TorchBackend"/>'s message (the loader's reason and what to do), not TorchSharp's misleading one.
/// </summary>
public sealed class BackendFailureTests : IDisposable
{
    private const string Library = "libLibTorchSharp.so";
    private readonly string _dir = Directory.CreateTempSubdirectory("torchloss-unpatched-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void WithoutTheLoaderPatchTheProgramReportsWhyTorchCannotLoad()
    {
        if (!OperatingSystem.IsLinux()) return; // the patch and this failure exist on Linux only
        string original = Path.Combine(RepositoryPaths.NuGetPackageRoot, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", Library);
        Assert.True(File.Exists(original), $"TorchSharp's library is not in the NuGet cache ({original})");
        CopyOutput(file => Path.GetFileName(file) == Library ? original : file);

        var (exitCode, text) = RunSkyIsBlue();

        if (HostLibStdCxxHas("GLIBCXX_3.4.32"))
        {
            Assert.True(exitCode == 0, text);
            Assert.Contains("0.1064", text);
        }
        else
        {
            Assert.NotEqual(0, exitCode);
            string message = TorchLossMessage(text);
            Assert.Contains("GLIBCXX_3.4.32", message); // the loader's own reason
            Assert.Contains("libstdc++6 from GCC 13", message);
            Assert.DoesNotContain("TorchSharp-cpu", message); // the backend is there: no advice to add it
        }
    }

    [Fact]
    public void WithoutABackendPackageTheProgramSaysOnlyWhichPackageToAdd()
    {
        // An output as a project without TorchSharp-cpu gets it: TorchSharp's own (patched) library, no libtorch.
        CopyOutput(file => IsLibTorchFile(file) ? null : file);

        var (exitCode, text) = RunSkyIsBlue();

        Assert.NotEqual(0, exitCode);
        string message = TorchLossMessage(text);
        Assert.Contains("The application has no libtorch backend", message);
        Assert.Contains("dotnet add package TorchSharp-cpu", message);
        Assert.DoesNotContain("GLIBCXX", message);
        Assert.DoesNotContain("libstdc++", message);
    }

    /// <summary>TorchBackend's own message in the crash output, without the inner exception TorchSharp wrote.</summary>
    private static string TorchLossMessage(string output)
    {
        const string start = "System.InvalidOperationException: TorchSharp's native backend could not be loaded.";
        int at = output.IndexOf(start, StringComparison.Ordinal);
        Assert.True(at >= 0, output);
        int end = output.IndexOf(" ---> ", at, StringComparison.Ordinal);
        return output[at..(end < 0 ? output.Length : end)];
    }

    private static bool IsLibTorchFile(string file) =>
        Path.GetFullPath(file).Contains($"{Path.DirectorySeparatorChar}native{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
        && Path.GetFileName(file) != Library && !Path.GetFileName(file).Contains("Skia", StringComparison.OrdinalIgnoreCase)
        && !Path.GetFileName(file).Contains("HarfBuzz", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Copies this test's output into the temporary folder; <paramref name="source"/> maps each file to the file to copy
    /// in its place, or null to leave it out. The host resolves the application's real path, so the managed files are
    /// copied; the large native libraries of libtorch are only linked.
    /// </summary>
    private void CopyOutput(Func<string, string?> source)
    {
        string output = AppContext.BaseDirectory;
        foreach (string file in Directory.EnumerateFiles(output, "*", SearchOption.AllDirectories))
        {
            if (source(file) is not { } from) continue;
            string target = Path.Combine(_dir, Path.GetRelativePath(output, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            if (from != file || new FileInfo(file).Length <= 16 << 20) File.Copy(from, target);
            else File.CreateSymbolicLink(target, file);
        }
    }

    private (int ExitCode, string Output) RunSkyIsBlue()
    {
        var result = DotnetProcess.Run(_dir, TimeSpan.FromMinutes(2), Path.Combine(_dir, "SkyIsBlue.dll"));
        return (result.ExitCode, result.Output);
    }

    /// <summary>Whether the loader's libstdc++.so.6 names <paramref name="version"/> (it names every version it defines).</summary>
    private static bool HostLibStdCxxHas(string version)
    {
        string[] dirs = ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"];
        string path = dirs.Select(d => Path.Combine(d, "libstdc++.so.6")).First(File.Exists);
        return File.ReadAllBytes(path).AsSpan().IndexOf(Encoding.ASCII.GetBytes(version + "\0")) >= 0;
    }
}
