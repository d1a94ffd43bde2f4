using System.Diagnostics;
using System.Reflection;
using System.Security.Cryptography;
using System.Text;

namespace TorchLoss.Tests.NativeLoading;

/// <summary>
/// The build task that marks libLibTorchSharp.so's GLIBCXX_3.4.32 need weak, run on copies of the library in
/// NuGet's cache. The "host" libstdc++ is a copy of this machine's with its version names edited, so every
/// test knows which versions its host defines whatever the machine.
/// </summary>
public sealed class ElfPatchTests : IDisposable
{
    private const string MissingVersion = "GLIBCXX_3.4.32";

    private readonly string _dir = Directory.CreateTempSubdirectory("torchloss-elf-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [LibTorchSharpFact]
    public void PatchesTheCopyWhenTheHostLacksTheVersion()
    {
        string lib = CopyOfCacheLibrary("out");
        var run = Run(HostWithout(MissingVersion), lib);

        Assert.True(run.Result);
        Assert.Empty(run.Warnings);
        var need = Need(lib, MissingVersion);
        Assert.True(need.IsWeak);
        // Exactly the flags of that one version need changed, and nothing else in the file.
        byte[] before = File.ReadAllBytes(Fixture.CacheLibrary), after = File.ReadAllBytes(lib);
        Assert.Equal(before.Length, after.Length);
        var changed = Enumerable.Range(0, before.Length).Where(i => before[i] != after[i]).ToList();
        Assert.Equal([need.FlagsOffset], changed);
        Assert.All(ElfFile.Read(lib).VersionNeeds().Where(n => n.Name != MissingVersion), n => Assert.False(n.IsWeak, n.Name));
        Assert.Contains(run.Messages, m => m.Contains(MissingVersion) && m.Contains("weak"));
    }

    [LibTorchSharpFact]
    public void LeavesAHardLinkedOriginalUntouched()
    {
        string original = CopyOfCacheLibrary("cache");
        string output = Path.Combine(Directory.CreateDirectory(Path.Combine(_dir, "out")).FullName, Fixture.FileName);
        HardLink(original, output);
        AssertSameFile(original, output); // the link really shares the original's inode before the patch

        var run = Run(HostWithout(MissingVersion), output);

        Assert.True(run.Result);
        Assert.True(Need(output, MissingVersion).IsWeak);
        Assert.False(Need(original, MissingVersion).IsWeak);
        Assert.Equal(Sha256(Fixture.CacheLibrary), Sha256(original));
    }

    [LibTorchSharpFact]
    public void SecondRunChangesNothing()
    {
        string lib = CopyOfCacheLibrary("out");
        string host = HostWithout(MissingVersion);
        Assert.True(Run(host, lib).Result);
        string patched = Sha256(lib);
        string witness = Path.Combine(_dir, "witness.so");
        HardLink(lib, witness);

        var second = Run(host, lib);

        Assert.True(second.Result);
        Assert.Empty(second.Warnings);
        Assert.DoesNotContain(second.Messages, m => m.Contains("weak"));
        Assert.Equal(patched, Sha256(lib));
        AssertSameFile(witness, lib); // not even rewritten with the same bytes
    }

    [LibTorchSharpFact]
    public void DoesNothingWhenTheHostDefinesTheVersion()
    {
        string lib = CopyOfCacheLibrary("out");
        string host = HostWith(MissingVersion);
        Assert.Contains(MissingVersion, ElfFile.Read(host).DefinedVersions());

        var run = Run(host, lib);

        Assert.True(run.Result);
        Assert.Empty(run.Warnings);
        Assert.False(Need(lib, MissingVersion).IsWeak);
        Assert.Equal(Sha256(Fixture.CacheLibrary), Sha256(lib));
    }

    [LibTorchSharpFact]
    public void RefusesAndWarnsWhenARelocationUsesASymbolOfTheVersion()
    {
        string lib = CopyOfCacheLibrary("out");
        var elf = ElfFile.Read(lib);
        var symbol = Assert.Single(elf.SymbolsWithVersionIndex(Need(lib, MissingVersion).Index));
        Assert.DoesNotContain(symbol.Index, elf.RelocatedSymbolIndices()); // the shipped library is safe to patch
        RetargetFirstDynamicRelocation(lib, symbol.Index);
        Assert.Contains(symbol.Index, ElfFile.Read(lib).RelocatedSymbolIndices());
        string crafted = Sha256(lib);

        var run = Run(HostWithout(MissingVersion), lib);

        Assert.True(run.Result); // a warning, not a failed build
        var warning = Assert.Single(run.Warnings);
        Assert.Equal("TLNATIVE004", warning.Code);
        Assert.Contains(MissingVersion, warning.Message);
        Assert.Contains(symbol.Name, warning.Message);
        Assert.Equal(crafted, Sha256(lib));
    }

    [LibTorchSharpFact]
    public void WarnsAndLeavesTheLibraryWhenTheHostLibraryIsUnreadable()
    {
        string lib = CopyOfCacheLibrary("out");
        string notElf = Path.Combine(_dir, "libstdc++.so.6");
        File.WriteAllText(notElf, "not a shared object");

        var run = Run(notElf, lib);

        Assert.True(run.Result);
        Assert.Equal("TLNATIVE002", Assert.Single(run.Warnings).Code);
        Assert.Equal(Sha256(Fixture.CacheLibrary), Sha256(lib));
    }

    [LibTorchSharpFact]
    public void BuildOutputCopyIsPatchedAndTheCacheIsNot()
    {
        string output = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", Fixture.FileName);
        Assert.True(File.Exists(output), $"{output} is missing from the test's build output");
        string host = PatchLibTorchSharpVersionNeeds.FindHostLibStdCxx() ?? throw new InvalidOperationException("no host libstdc++.so.6");
        bool hostLacksIt = !ElfFile.Read(host).DefinedVersions().Contains(MissingVersion);

        Assert.False(Need(Fixture.CacheLibrary, MissingVersion).IsWeak);
        Assert.Equal(hostLacksIt, Need(output, MissingVersion).IsWeak);
    }

    private sealed record Warning(string Code, string Message);

    private sealed record TaskRun(bool Result, IReadOnlyList<Warning> Warnings, IReadOnlyList<string> Messages);

    private static TaskRun Run(string host, params string[] libraries)
    {
        var engine = new RecordingBuildEngine();
        var task = new PatchLibTorchSharpVersionNeeds
        {
            BuildEngine = engine,
            HostLibStdCxx = host,
            Libraries = libraries.Select(l => (Microsoft.Build.Framework.ITaskItem)new Microsoft.Build.Utilities.TaskItem(l)).ToArray(),
        };
        bool result = task.Execute();
        Assert.Empty(engine.Errors);
        return new TaskRun(result, engine.Warnings, engine.Messages);
    }

    private static ElfFile.VersionNeed Need(string path, string version) =>
        Assert.Single(ElfFile.Read(path).VersionNeeds(), n => n.Name == version && n.File.StartsWith("libstdc++", StringComparison.Ordinal));

    private string CopyOfCacheLibrary(string folder)
    {
        string path = Path.Combine(Directory.CreateDirectory(Path.Combine(_dir, folder)).FullName, Fixture.FileName);
        File.Copy(Fixture.CacheLibrary, path);
        return path;
    }

    /// <summary>A copy of this machine's libstdc++ whose version definitions include <paramref name="version"/>.</summary>
    private string HostWith(string version)
    {
        byte[] bytes = File.ReadAllBytes(Fixture.HostLibStdCxx);
        var defined = ElfFile.Read(Fixture.HostLibStdCxx).DefinedVersions();
        if (!defined.Contains(version))
        {
            // Rename another definition of the same length in the string table, e.g. GLIBCXX_3.4.30 -> GLIBCXX_3.4.32.
            string donor = defined.First(v => v.Length == version.Length && v.StartsWith("GLIBCXX_", StringComparison.Ordinal));
            bytes = ReplaceAll(bytes, donor, version);
        }
        return Write("host-new", bytes);
    }

    /// <summary>A copy of this machine's libstdc++ that does not define <paramref name="version"/>.</summary>
    private string HostWithout(string version)
    {
        byte[] bytes = File.ReadAllBytes(Fixture.HostLibStdCxx);
        if (ElfFile.Read(Fixture.HostLibStdCxx).DefinedVersions().Contains(version))
            bytes = ReplaceAll(bytes, version, version[..^1] + "X");
        string path = Write("host-old", bytes);
        Assert.DoesNotContain(version, ElfFile.Read(path).DefinedVersions());
        return path;
    }

    private string Write(string folder, byte[] bytes)
    {
        string path = Path.Combine(Directory.CreateDirectory(Path.Combine(_dir, folder)).FullName, "libstdc++.so.6");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>Replaces every NUL-terminated occurrence of <paramref name="from"/> (same length as <paramref name="to"/>).</summary>
    private static byte[] ReplaceAll(byte[] bytes, string from, string to)
    {
        byte[] f = Encoding.ASCII.GetBytes(from + "\0"), t = Encoding.ASCII.GetBytes(to + "\0");
        Assert.Equal(f.Length, t.Length);
        var span = bytes.AsSpan();
        int replaced = 0;
        for (int at = span.IndexOf(f); at >= 0; at = span.IndexOf(f))
        {
            t.CopyTo(span[at..]);
            replaced++;
        }
        Assert.True(replaced > 0, $"{from} not found");
        return bytes;
    }

    /// <summary>
    /// Makes the first relocation against .dynsym refer to symbol <paramref name="symbolIndex"/> by rewriting the
    /// symbol half of its r_info. Parsed here independently of <see cref="ElfFile"/>, with ELF64 offsets.
    /// </summary>
    private static void RetargetFirstDynamicRelocation(string path, int symbolIndex)
    {
        byte[] b = File.ReadAllBytes(path);
        long shoff = BitConverter.ToInt64(b, 0x28);
        int shentsize = BitConverter.ToUInt16(b, 0x3A), shnum = BitConverter.ToUInt16(b, 0x3C);
        long Header(int i) => shoff + (long)i * shentsize;
        uint Type(int i) => BitConverter.ToUInt32(b, (int)Header(i) + 4);
        int dynsym = Enumerable.Range(0, shnum).Single(i => Type(i) == 11 /* SHT_DYNSYM */);
        int rela = Enumerable.Range(0, shnum).First(i => Type(i) == 4 /* SHT_RELA */ && BitConverter.ToUInt32(b, (int)Header(i) + 40) == dynsym);
        long entry = BitConverter.ToInt64(b, (int)Header(rela) + 24);
        BitConverter.GetBytes((uint)symbolIndex).CopyTo(b, entry + 8 + 4); // r_info = sym << 32 | type
        File.WriteAllBytes(path, b);
    }

    private static void HardLink(string existing, string link) => RunTool("ln", existing, link);

    /// <summary>Appending through one name and seeing it through the other proves both are one inode.</summary>
    private static void AssertSameFile(string a, string b)
    {
        long length = new FileInfo(b).Length;
        File.AppendAllText(a, "x");
        Assert.Equal(length + 1, new FileInfo(b).Length);
        using (var s = new FileStream(a, FileMode.Open)) s.SetLength(length);
    }

    private static void RunTool(string tool, params string[] args)
    {
        using var process = Process.Start(new ProcessStartInfo(tool, args) { RedirectStandardError = true })!;
        string error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"{tool} failed: {error}");
    }

    private static string Sha256(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)));

    private sealed class RecordingBuildEngine : Microsoft.Build.Framework.IBuildEngine
    {
        public List<Warning> Warnings { get; } = [];
        public List<string> Messages { get; } = [];
        public List<string> Errors { get; } = [];
        public bool ContinueOnError => false;
        public int LineNumberOfTaskNode => 0;
        public int ColumnNumberOfTaskNode => 0;
        public string ProjectFileOfTaskNode => "test.proj";
        public bool BuildProjectFile(string projectFileName, string[] targetNames, System.Collections.IDictionary globalProperties, System.Collections.IDictionary targetOutputs) => false;
        public void LogCustomEvent(Microsoft.Build.Framework.CustomBuildEventArgs e) => Messages.Add(e.Message ?? "");
        public void LogErrorEvent(Microsoft.Build.Framework.BuildErrorEventArgs e) => Errors.Add(e.Message ?? "");
        public void LogMessageEvent(Microsoft.Build.Framework.BuildMessageEventArgs e) => Messages.Add(e.Message ?? "");
        public void LogWarningEvent(Microsoft.Build.Framework.BuildWarningEventArgs e) => Warnings.Add(new Warning(e.Code, e.Message ?? ""));
    }

    /// <summary>Where the tests find TorchSharp's library in NuGet's cache and this machine's libstdc++.</summary>
    internal static class Fixture
    {
        public const string FileName = "libLibTorchSharp.so";

        public static string CacheLibrary { get; } = Path.Combine(PackageRoot(), "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", FileName);

        public static string HostLibStdCxx { get; } = PatchLibTorchSharpVersionNeeds.FindHostLibStdCxx() ?? "";

        public static string? WhyUnavailable()
        {
            // On Linux the restore of this project always puts TorchSharp's library in the cache and the host
            // always has a libstdc++, so a missing file there is a failure (the fixture throws), never a skip.
            return OperatingSystem.IsLinux() ? null : "the ELF patch runs on Linux only";
        }

        // The build records the restore's package folder; NUGET_PACKAGES and ~/.nuget/packages are the fallbacks.
        private static string PackageRoot()
        {
            string? recorded = typeof(Fixture).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
                .FirstOrDefault(a => a.Key == "NuGetPackageRoot")?.Value;
            if (!string.IsNullOrEmpty(recorded) && Directory.Exists(recorded)) return recorded;
            string? env = Environment.GetEnvironmentVariable("NUGET_PACKAGES");
            if (!string.IsNullOrEmpty(env)) return env;
            return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        }
    }
}

/// <summary>A fact that is skipped, saying why, on operating systems other than Linux (the patch is Linux-only).</summary>
public sealed class LibTorchSharpFactAttribute : FactAttribute
{
    /// <summary>Sets <see cref="FactAttribute.Skip"/> when the test cannot run here.</summary>
    public LibTorchSharpFactAttribute()
    {
        if (ElfPatchTests.Fixture.WhyUnavailable() is { } reason) Skip = reason;
    }
}
