using System.Diagnostics;
using System.Reflection;
using System.Text;

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
        string original = Path.Combine(PackageRoot(), "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", Library);
        Assert.True(File.Exists(original), $"TorchSharp's library is not in the NuGet cache ({original})");

        // A copy of the output with the unpatched library. The host resolves the application's real path, so the
        // managed files are copied; the large native libraries of libtorch are only linked.
        string output = AppContext.BaseDirectory;
        foreach (string file in Directory.EnumerateFiles(output, "*", SearchOption.AllDirectories))
        {
            string target = Path.Combine(_dir, Path.GetRelativePath(output, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            if (Path.GetFileName(file) == Library) File.Copy(original, target);
            else if (new FileInfo(file).Length > 16 << 20) File.CreateSymbolicLink(target, file);
            else File.Copy(file, target);
        }

        var (exitCode, text) = RunDotnet(Path.Combine(_dir, "SkyIsBlue.dll"));

        if (HostLibStdCxxHas("GLIBCXX_3.4.32"))
        {
            Assert.True(exitCode == 0, text);
            Assert.Contains("0.1064", text);
        }
        else
        {
            Assert.NotEqual(0, exitCode);
            Assert.Contains("System.InvalidOperationException: TorchSharp's native backend could not be loaded.", text);
            Assert.Contains("GLIBCXX_3.4.32", text); // the loader's own reason
            Assert.Contains("TorchSharp-cpu", text);
            Assert.Contains("libstdc++6 from GCC 13", text);
        }
    }

    private static (int ExitCode, string Output) RunDotnet(string assembly)
    {
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";
        var start = new ProcessStartInfo(dotnet, [assembly]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(start)!;
        var output = new StringBuilder();
        process.OutputDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail("SkyIsBlue did not finish within 2 minutes");
        }
        process.WaitForExit(); // drains the redirected streams
        lock (output) return (process.ExitCode, output.ToString());
    }

    /// <summary>Whether the loader's libstdc++.so.6 names <paramref name="version"/> (it names every version it defines).</summary>
    private static bool HostLibStdCxxHas(string version)
    {
        string[] dirs = ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"];
        string path = dirs.Select(d => Path.Combine(d, "libstdc++.so.6")).First(File.Exists);
        return File.ReadAllBytes(path).AsSpan().IndexOf(Encoding.ASCII.GetBytes(version + "\0")) >= 0;
    }

    private static string PackageRoot()
    {
        string? recorded = typeof(BackendFailureTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == "NuGetPackageRoot")?.Value;
        if (!string.IsNullOrEmpty(recorded) && Directory.Exists(recorded)) return recorded;
        return Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } env
            ? env
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
    }
}
