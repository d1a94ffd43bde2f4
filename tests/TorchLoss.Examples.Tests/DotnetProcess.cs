using System.Diagnostics;
using System.Text;

namespace TorchLoss.Examples.Tests;

/// <summary>Runs the <c>dotnet</c> command line in a child process, as a user at a terminal would, and captures what it prints.</summary>
internal static class DotnetProcess
{
    /// <summary>What a finished command returned: its exit code and its standard output and error, interleaved.</summary>
    public sealed record Result(int ExitCode, string Output);

    /// <summary>The dotnet host that runs these tests, so a child uses the same SDK.</summary>
    public static string Host { get; } =
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";

    /// <summary>Runs <c>dotnet <paramref name="args"/></c> in <paramref name="workingDirectory"/>; fails the test if it does not end in time.</summary>
    public static Result Run(string workingDirectory, TimeSpan timeout, params string[] args) =>
        Run(workingDirectory, timeout, new Dictionary<string, string?>(), args);

    /// <summary>Runs <c>dotnet <paramref name="args"/></c> with <paramref name="environment"/> changed: a null value removes the variable.</summary>
    public static Result Run(string workingDirectory, TimeSpan timeout, IReadOnlyDictionary<string, string?> environment, params string[] args)
    {
        var start = new ProcessStartInfo(Host) { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in args) start.ArgumentList.Add(arg);
        // The test host runs inside an MSBuild-launched environment; a child build must start from a user's environment.
        foreach (string name in start.Environment.Keys.Where(k => k.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase)).ToList())
            start.Environment.Remove(name);
        foreach (var (name, value) in environment)
        {
            if (value is null) start.Environment.Remove(name);
            else start.Environment[name] = value;
        }
        using var process = Process.Start(start)!;
        var output = new StringBuilder();
        process.OutputDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            lock (output) Assert.Fail($"'dotnet {string.Join(' ', args)}' did not finish within {timeout}:\n{output}");
        }
        process.WaitForExit(); // drains the redirected streams
        lock (output) return new Result(process.ExitCode, output.ToString());
    }

    /// <summary>Runs a command that must succeed; returns what it printed.</summary>
    public static string RunOrFail(string workingDirectory, TimeSpan timeout, params string[] args) =>
        RunOrFail(workingDirectory, timeout, new Dictionary<string, string?>(), args);

    /// <summary>Runs a command that must succeed with <paramref name="environment"/> set; returns what it printed.</summary>
    public static string RunOrFail(string workingDirectory, TimeSpan timeout, IReadOnlyDictionary<string, string?> environment, params string[] args)
    {
        var result = Run(workingDirectory, timeout, environment, args);
        Assert.True(result.ExitCode == 0, $"'dotnet {string.Join(' ', args)}' exited with {result.ExitCode}:\n{result.Output}");
        return result.Output;
    }
}
