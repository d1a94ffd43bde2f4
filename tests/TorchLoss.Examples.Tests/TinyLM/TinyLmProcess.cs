using System.Diagnostics;

namespace TorchLoss.Examples.Tests.TinyLM;

/// <summary>Runs the built TinyLM program in its own process, as a user would, and captures what it prints.</summary>
internal static class TinyLmProcess
{
    public sealed record Result(int ExitCode, string Output, string Error);

    public static Result Run(params string[] args) => Run(new Dictionary<string, string?>(), args);

    /// <summary>Runs TinyLM with <paramref name="environment"/> changed: a null value removes the variable.</summary>
    public static Result Run(IReadOnlyDictionary<string, string?> environment, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var (name, value) in environment)
        {
            if (value is null) start.Environment.Remove(name);
            else start.Environment[name] = value;
        }
        start.ArgumentList.Add(ProgramPath);
        // One thread: the test runner runs other test projects beside this one on the same cores.
        start.ArgumentList.Add("--threads");
        start.ArgumentList.Add("1");
        foreach (var arg in args)
            start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"TinyLM {string.Join(' ', args)} did not finish in 5 minutes.");
        }
        return new Result(process.ExitCode, output.Result, error.Result);
    }

    // The test project references TinyLM, so its own build output sits beside ours under examples/TinyLM.
    private static string ProgramPath { get; } = FindProgram();

    private static string FindProgram()
    {
        var here = new DirectoryInfo(AppContext.BaseDirectory);
        string framework = here.Name;
        string configuration = here.Parent!.Name;
        for (var dir = here; dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "TorchLoss.sln")))
            {
                string path = Path.Combine(dir.FullName, "examples", "TinyLM", "bin", configuration, framework, "TinyLM.dll");
                if (!File.Exists(path))
                    throw new FileNotFoundException($"TinyLM is not built at {path}.");
                return path;
            }
        }
        throw new DirectoryNotFoundException($"No TorchLoss.sln above {AppContext.BaseDirectory}.");
    }
}
