namespace TorchLoss.Examples.Tests.SkyIsBlue;

/// <summary>
/// SkyIsBlue does not opt in to passive OpenMP waits, so it shows what the library alone does to a process: it loads
/// libtorch (TorchBackend.EnsureLoaded, from SkyIsBlueLesson) and must leave OpenMP's wait policy as it found it.
/// </summary>
public sealed class WaitPolicyTests
{
    // OpenMP (libgomp) prints OMP_WAIT_POLICY = 'PASSIVE' even when the variable is unset, so the spin count, which
    // only a passive policy sets to 0 (unset: 300,000), is what tells them apart.
    [Fact]
    public void The_library_alone_leaves_the_wait_policy_unset()
    {
        if (!OperatingSystem.IsLinux()) return; // libgomp's display format, and TorchLoss's setenv path, are Linux's
        var environment = new Dictionary<string, string?> { ["OMP_WAIT_POLICY"] = null, ["GOMP_SPINCOUNT"] = null, ["OMP_DISPLAY_ENV"] = "VERBOSE" };
        var run = DotnetProcess.Run(AppContext.BaseDirectory, TimeSpan.FromMinutes(2), environment, Path.Combine(AppContext.BaseDirectory, "SkyIsBlue.dll"));
        Assert.True(run.ExitCode == 0, run.Output);
        Assert.Contains("0.1064", run.Output);                       // it ran its lesson on libtorch
        Assert.Contains("OPENMP DISPLAY ENVIRONMENT BEGIN", run.Output);
        Assert.Contains("GOMP_SPINCOUNT = '300000'", run.Output);    // OpenMP's default: nobody chose passive waits
    }
}
