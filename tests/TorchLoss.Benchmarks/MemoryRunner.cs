using System.Diagnostics;

namespace TorchLoss.Benchmarks;

/// <summary>
/// Peak resident memory of each variant, native tensors included (BenchmarkDotNet's memory diagnoser sees only
/// the managed heap): each variant runs in a fresh child process, which reports its VmHWM from /proc/self/status.
/// </summary>
public static class MemoryRunner
{
    private const string ChildFlag = "--memory-child";

    /// <summary>Runs every variant of every case in its own process and prints a Markdown table.</summary>
    public static void Run(IEnumerable<Case> cases, TextWriter output)
    {
        output.WriteLine("| case | variant | peak RSS MiB | after set-up MiB | peak − set-up MiB | peak ratio to first |");
        output.WriteLine("| --- | --- | ---: | ---: | ---: | ---: |");
        foreach (var c in cases)
        {
            double? first = null;
            foreach (var v in c.Variants.Where(v => v.Name is not ("copy" or "clone" or "matmuls")))
            {
                var (setup, peak) = RunChild(c.Name, v.Name);
                first ??= peak;
                output.WriteLine($"| {c.Name} | {v.Name} | {peak:F0} | {setup:F0} | {peak - setup:F0} | {peak / first.Value:F3} |");
                output.Flush();
            }
        }
    }

    /// <summary>True when these arguments ask this process to be a measuring child; then it has run and printed its figures.</summary>
    public static bool TryRunAsChild(string[] args)
    {
        if (args.Length != 3 || args[0] != ChildFlag) return false;
        var c = Cases.Find(args[1]);
        var variant = c.Variants.First(v => v.Name == args[2]);
        using var workload = c.Create();
        double setup = ReadStatusMiB("VmHWM");
        for (int i = 0; i < 3; i++) variant.TimedCall(workload);
        // resident= is what stays after the calls (the last call's gradients included); peak − resident is the calls' transient part.
        Console.WriteLine(FormattableString.Invariant($"setup={setup} peak={ReadStatusMiB("VmHWM")} resident={ReadStatusMiB("VmRSS")}"));
        return true;
    }

    private static (double Setup, double Peak) RunChild(string caseName, string variant)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, UseShellExecute = false };
        // Started through the dotnet host, the entry assembly must be passed again.
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet")
            start.ArgumentList.Add(typeof(MemoryRunner).Assembly.Location);
        foreach (var a in new[] { ChildFlag, caseName, variant }) start.ArgumentList.Add(a);
        using var child = Process.Start(start)!;
        string text = child.StandardOutput.ReadToEnd();
        child.WaitForExit();
        var line = text.Split('\n').LastOrDefault(l => l.StartsWith("setup=", StringComparison.Ordinal))
            ?? throw new InvalidOperationException($"The child for {caseName} / {variant} exited with {child.ExitCode} and printed: {text}");
        var parts = line.Trim().Split(' ').Select(p => double.Parse(p.Split('=')[1], System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        return (parts[0], parts[1]);
    }

    private static double ReadStatusMiB(string field)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith(field + ":", StringComparison.Ordinal))
                return double.Parse(line[(field.Length + 1)..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture) / 1024;
        }
        throw new PlatformNotSupportedException($"/proc/self/status has no {field}; the memory mode needs Linux.");
    }
}
