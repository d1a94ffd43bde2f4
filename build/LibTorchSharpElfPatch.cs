// Compiled by MSBuild's RoslynCodeTaskFactory from TorchLoss.targets; not part of the library assembly.
//
// Why this exists: TorchSharp 0.107.0's libLibTorchSharp.so was linked against GCC 13's libstdc++ and
// records a need for GLIBCXX_3.4.32. Debian 12 / Ubuntu 22.04 ship an older libstdc++, so the loader
// refuses the library and TorchSharp reports a misleading "doesn't contain a reference to libtorch-...".
// The only symbol of that version is std::ios_base_library_init(), which no relocation references, so
// marking that version need weak (VER_FLG_WEAK) lets glibc load the library safely. We only ever patch
// the build output copy, through a temporary file and a rename, so NuGet's cache and any hard-linked
// original are never touched.
#nullable enable
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

public sealed class PatchLibTorchSharpVersionNeeds : Microsoft.Build.Utilities.Task
{
    /// <summary>Copies of libLibTorchSharp.so in the build output.</summary>
    [Required] public ITaskItem[] Libraries { get; set; } = new ITaskItem[0];

    /// <summary>Optional explicit libstdc++ to check against (tests use it); otherwise the loader's search path.</summary>
    public string? HostLibStdCxx { get; set; }

    public override bool Execute()
    {
        string? host = HostLibStdCxx;
        if (string.IsNullOrEmpty(host)) host = FindHostLibStdCxx();
        if (host is null)
        {
            Log.LogWarning(null, "TLNATIVE001", null, null, 0, 0, 0, 0,
                "TorchLoss: could not find the host's libstdc++.so.6, so libLibTorchSharp.so was left as it is. " +
                "If TorchSharp fails to load, install libstdc++6 from GCC 13 or newer.");
            return true;
        }

        HashSet<string> hostVersions;
        try { hostVersions = ElfFile.Read(host).DefinedVersions(); }
        catch (Exception e)
        {
            Log.LogWarning(null, "TLNATIVE002", null, null, 0, 0, 0, 0, "TorchLoss: cannot read {0}: {1}", host, e.Message);
            return true;
        }

        foreach (var item in Libraries)
        {
            string path = item.GetMetadata("FullPath");
            try { PatchOne(path, hostVersions); }
            catch (Exception e)
            {
                Log.LogWarning(null, "TLNATIVE003", null, path, 0, 0, 0, 0,
                    "TorchLoss: could not check {0} for missing libstdc++ versions: {1}", path, e.Message);
            }
        }
        return true;
    }

    void PatchOne(string path, HashSet<string> hostVersions)
    {
        var elf = ElfFile.Read(path);
        var missing = elf.VersionNeeds()
            .Where(n => n.File.StartsWith("libstdc++", StringComparison.Ordinal) && !hostVersions.Contains(n.Name))
            .ToList();
        var toPatch = missing.Where(n => !n.IsWeak).ToList();
        if (toPatch.Count == 0) return; // host is new enough, or already patched

        var relocated = elf.RelocatedSymbolIndices();
        foreach (var need in toPatch)
        {
            var users = elf.SymbolsWithVersionIndex(need.Index);
            var bad = users.Where(s => relocated.Contains(s.Index)).Select(s => s.Name).ToList();
            if (bad.Count > 0)
            {
                Log.LogWarning(null, "TLNATIVE004", null, path, 0, 0, 0, 0,
                    "TorchLoss: {0} needs {1} from libstdc++, which this machine's libstdc++ lacks, and relocations use " +
                    "symbols of that version ({2}); it cannot be patched safely. Install libstdc++6 from GCC 13 or newer.",
                    Path.GetFileName(path), need.Name, string.Join(", ", bad.Take(5)));
                return;
            }
        }

        byte[] bytes = File.ReadAllBytes(path);
        foreach (var need in toPatch)
        {
            ushort flags = BitConverter.ToUInt16(bytes, need.FlagsOffset);
            flags |= ElfFile.VerFlagWeak;
            bytes[need.FlagsOffset] = (byte)flags;
            bytes[need.FlagsOffset + 1] = (byte)(flags >> 8);
        }

        // Write beside the target and rename over it: the rename replaces the directory entry, so a hard link
        // into the NuGet cache is left pointing at the untouched original.
        var original = new FileInfo(path);
        DateTime stamp = original.LastWriteTimeUtc;
        string temp = path + ".torchloss-" + Guid.NewGuid().ToString("N") + ".tmp";
        File.WriteAllBytes(temp, bytes);
        File.SetLastWriteTimeUtc(temp, stamp); // same size and time: MSBuild's incremental copy keeps our copy
        File.Replace(temp, path, null); // rename(2) on Unix
        Log.LogMessage(MessageImportance.Normal,
            "TorchLoss: marked {0} weak in {1} (host libstdc++ lacks it; its only symbols are unrelocated).",
            string.Join(", ", toPatch.Select(n => n.Name)), path);
    }

    internal static string? FindHostLibStdCxx()
    {
        var dirs = new List<string>();
        string? ldPath = Environment.GetEnvironmentVariable("LD_LIBRARY_PATH");
        if (!string.IsNullOrEmpty(ldPath)) dirs.AddRange(ldPath.Split(new[] { ':' }, StringSplitOptions.RemoveEmptyEntries));
        dirs.AddRange(new[]
        {
            "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
            "/lib64", "/usr/lib64", "/lib", "/usr/lib",
        });
        return dirs.Select(d => Path.Combine(d, "libstdc++.so.6")).FirstOrDefault(p => File.Exists(p));
    }
}

/// <summary>The small part of an ELF64 little-endian shared object that symbol versioning needs.</summary>
sealed class ElfFile
{
    public const ushort VerFlagWeak = 0x2;
    const uint ShtRela = 4, ShtRel = 9, ShtDynsym = 11;
    const uint ShtGnuVerdef = 0x6ffffffd, ShtGnuVerneed = 0x6ffffffe, ShtGnuVersym = 0x6fffffff;

    // Plain classes, not records: RoslynCodeTaskFactory compiles against netstandard, which lacks init accessors.
    public sealed class Section
    {
        public Section(int index, uint type, long offset, long size, uint link, long entrySize)
        { Index = index; Type = type; Offset = offset; Size = size; Link = link; EntrySize = entrySize; }
        public int Index { get; } public uint Type { get; } public long Offset { get; }
        public long Size { get; } public uint Link { get; } public long EntrySize { get; }
    }

    public sealed class VersionNeed
    {
        public VersionNeed(string file, string name, ushort index, bool isWeak, int flagsOffset)
        { File = file; Name = name; Index = index; IsWeak = isWeak; FlagsOffset = flagsOffset; }
        public string File { get; } public string Name { get; } public ushort Index { get; }
        public bool IsWeak { get; } public int FlagsOffset { get; }
    }

    public sealed class Symbol
    {
        public Symbol(int index, string name) { Index = index; Name = name; }
        public int Index { get; } public string Name { get; }
    }

    readonly byte[] _b;
    readonly List<Section> _sections = new();

    ElfFile(byte[] bytes)
    {
        _b = bytes;
        if (bytes.Length < 64 || bytes[0] != 0x7f || bytes[1] != (byte)'E' || bytes[2] != (byte)'L' || bytes[3] != (byte)'F')
            throw new InvalidDataException("not an ELF file");
        if (bytes[4] != 2 || bytes[5] != 1) throw new InvalidDataException("only 64-bit little-endian ELF is supported");
        long shoff = (long)U64(0x28);
        int shentsize = U16(0x3A), shnum = U16(0x3C);
        if (shoff <= 0 || shentsize < 64 || shoff + (long)shentsize * shnum > bytes.Length)
            throw new InvalidDataException("section header table is missing or truncated");
        for (int i = 0; i < shnum; i++)
        {
            int h = checked((int)(shoff + (long)i * shentsize));
            var s = new Section(i, U32(h + 4), (long)U64(h + 24), (long)U64(h + 32), U32(h + 40), (long)U64(h + 56));
            if (s.Type != 8 /* NOBITS */ && s.Offset + s.Size > bytes.Length)
                throw new InvalidDataException($"section {i} extends past the end of the file");
            _sections.Add(s);
        }
    }

    public static ElfFile Read(string path) => new(File.ReadAllBytes(path));

    ushort U16(long o) => BitConverter.ToUInt16(_b, checked((int)o));
    uint U32(long o) => BitConverter.ToUInt32(_b, checked((int)o));
    ulong U64(long o) => BitConverter.ToUInt64(_b, checked((int)o));

    string Str(Section strtab, uint offset)
    {
        long start = strtab.Offset + offset, end = start;
        long limit = strtab.Offset + strtab.Size;
        if (start >= limit) throw new InvalidDataException("string offset outside its table");
        while (end < limit && _b[end] != 0) end++;
        return Encoding.ASCII.GetString(_b, (int)start, (int)(end - start));
    }

    Section? Single(uint type) => _sections.FirstOrDefault(s => s.Type == type);

    /// <summary>Version names this object defines (.gnu.version_d), e.g. GLIBCXX_3.4.30.</summary>
    public HashSet<string> DefinedVersions()
    {
        var result = new HashSet<string>(StringComparer.Ordinal);
        var verdef = Single(ShtGnuVerdef);
        if (verdef is null) return result;
        var strtab = _sections[(int)verdef.Link];
        long p = verdef.Offset;
        while (true)
        {
            uint aux = U32(p + 12), next = U32(p + 16);
            ushort count = U16(p + 6);
            if (count > 0) result.Add(Str(strtab, U32(p + aux)));
            if (next == 0) break;
            p += next;
        }
        return result;
    }

    /// <summary>Every (file, version) this object needs (.gnu.version_r), with where its flags live.</summary>
    public List<VersionNeed> VersionNeeds()
    {
        var result = new List<VersionNeed>();
        var verneed = Single(ShtGnuVerneed);
        if (verneed is null) return result;
        var strtab = _sections[(int)verneed.Link];
        long p = verneed.Offset;
        while (true)
        {
            ushort cnt = U16(p + 2);
            string file = Str(strtab, U32(p + 4));
            long a = p + U32(p + 8);
            for (int i = 0; i < cnt; i++)
            {
                ushort flags = U16(a + 4), other = U16(a + 6);
                result.Add(new VersionNeed(file, Str(strtab, U32(a + 8)), other, (flags & VerFlagWeak) != 0, checked((int)(a + 4))));
                uint nextAux = U32(a + 12);
                if (nextAux == 0) break;
                a += nextAux;
            }
            uint next = U32(p + 12);
            if (next == 0) break;
            p += next;
        }
        return result;
    }

    /// <summary>Dynamic symbols whose .gnu.version entry is the given version index.</summary>
    public List<Symbol> SymbolsWithVersionIndex(ushort versionIndex)
    {
        var dynsym = Single(ShtDynsym) ?? throw new InvalidDataException("no .dynsym section");
        var versym = Single(ShtGnuVersym) ?? throw new InvalidDataException("no .gnu.version section");
        var strtab = _sections[(int)dynsym.Link];
        long count = dynsym.Size / 24;
        var result = new List<Symbol>();
        for (int i = 0; i < count; i++)
        {
            if ((U16(versym.Offset + 2L * i) & 0x7fff) != versionIndex) continue;
            result.Add(new Symbol(i, Str(strtab, U32(dynsym.Offset + 24L * i))));
        }
        return result;
    }

    /// <summary>Indices of dynamic symbols that any relocation against .dynsym refers to.</summary>
    public HashSet<int> RelocatedSymbolIndices()
    {
        var dynsym = Single(ShtDynsym) ?? throw new InvalidDataException("no .dynsym section");
        var result = new HashSet<int>();
        foreach (var s in _sections.Where(s => (s.Type == ShtRela || s.Type == ShtRel) && s.Link == dynsym.Index))
        {
            long entry = s.EntrySize > 0 ? s.EntrySize : (s.Type == ShtRela ? 24 : 16);
            for (long p = s.Offset; p + entry <= s.Offset + s.Size; p += entry)
                result.Add((int)(U64(p + 8) >> 32));
        }
        return result;
    }
}
