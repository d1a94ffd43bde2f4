using System.Runtime.InteropServices;
using TorchSharp;

namespace TorchLoss;

/// <summary>
/// Loads TorchSharp's native backend (libtorch) once and turns a failure into an exception that says what failed and
/// what to do, instead of TorchSharp's generic message. On request, and only then, it also gives libtorch's threads a
/// wait policy that holds up on a busy machine.
/// </summary>
/// <remarks>
/// libtorch's CPU operators run on OpenMP threads that by default spin while they wait for work. On an idle machine
/// that is a little faster; when other processes compete for the cores, the spinning threads take the cores from the
/// threads that have work and a run becomes several times slower. An application that expects to share its cores
/// calls <see cref="UsePassiveOpenMpWaits"/> at start-up, before anything loads libtorch (OpenMP reads its
/// environment once, at load); the library itself changes no process-wide setting. Anything that makes a tensor loads
/// libtorch, so call <see cref="EnsureLoaded"/> first; <see cref="OpenMpWaitPolicy"/> says which policy is in force.
/// </remarks>
public static class TorchBackend
{
    private const string WaitPolicyVariable = "OMP_WAIT_POLICY";
    private static readonly Lazy<Exception?> LoadFailure = new(TryLoad, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>
    /// Loads the CPU backend once per process. Call it at start-up, before any tensor is made, so that a missing or
    /// broken backend fails early with a clear message; the loss modules call it from their constructors too. It
    /// sets no environment variable: OpenMP keeps the wait policy the process started with, unless
    /// <see cref="UsePassiveOpenMpWaits"/> ran before it.
    /// </summary>
    /// <exception cref="InvalidOperationException">The native backend cannot be loaded.</exception>
    public static void EnsureLoaded()
    {
        if (LoadFailure.Value is { } failure)
            throw failure;
    }

    /// <summary>
    /// Opt-in: makes libtorch's OpenMP threads sleep instead of spin while they wait, by setting
    /// <c>OMP_WAIT_POLICY=PASSIVE</c> for this process and its children. It takes effect only when called before
    /// libtorch loads (before <see cref="EnsureLoaded"/> and before the first tensor), and never overrides a policy
    /// the user chose. Passive waits cost some speed on an idle machine and save a lot on a busy one.
    /// </summary>
    /// <returns>Whether it took effect, the policy OpenMP will use, and why; log it.</returns>
    public static OpenMpWaitChoice UsePassiveOpenMpWaits()
    {
        if (OperatingSystem.IsWindows())
            return new(false, null, "OpenMP wait policy left at its default: TorchLoss sets it on Linux and macOS only");
        string? chosen = Marshal.PtrToStringUTF8(Native.getenv(WaitPolicyVariable));
        if (LoadFailure.IsValueCreated || OpenMpIsLoaded())
        {
            // OpenMP read its environment when it loaded; setting the variable now would change nothing.
            return new(false, chosen,
                $"OpenMP wait policy left at {chosen ?? "its default (spinning)"}: libtorch and OpenMP were already loaded, so call UsePassiveOpenMpWaits before the first tensor");
        }
        if (chosen is not null)
            return new(false, chosen, $"OpenMP wait policy {chosen}, as {WaitPolicyVariable} in the environment chose");
        // The managed environment is a copy on Unix: OpenMP, which reads the C environment, sees only setenv.
        _ = Native.setenv(WaitPolicyVariable, "PASSIVE", 0);
        Environment.SetEnvironmentVariable(WaitPolicyVariable, "PASSIVE");   // and child processes inherit it
        return new(true, "PASSIVE", $"OpenMP wait policy PASSIVE: {WaitPolicyVariable} set before libtorch loads");
    }

    /// <summary>
    /// The OpenMP wait policy libtorch's threads use: the value of <c>OMP_WAIT_POLICY</c> when libtorch loaded (set by
    /// the user or by <see cref="UsePassiveOpenMpWaits"/>), or null where OpenMP runs with its default, spinning
    /// waits (no policy chosen, or on Windows, where TorchLoss does not read it). Read it after
    /// <see cref="EnsureLoaded"/>.
    /// </summary>
    public static string? OpenMpWaitPolicy => policyInForce;

    private static string? policyInForce;

    private static Exception? TryLoad()
    {
        policyInForce = OperatingSystem.IsWindows() ? null : Marshal.PtrToStringUTF8(Native.getenv(WaitPolicyVariable));
        try
        {
            torch.InitializeDeviceType(DeviceType.CPU);
            return null;
        }
        catch (Exception e)
        {
            return new InvalidOperationException(DescribeFailure(e), e);
        }
    }

    /// <summary>Whether an OpenMP runtime is already mapped into this process (Linux; false elsewhere).</summary>
    internal static bool OpenMpIsLoaded()
    {
        if (!OperatingSystem.IsLinux()) return false;
        try
        {
            return File.ReadLines("/proc/self/maps").Any(line => line.Contains("/libgomp", StringComparison.Ordinal));
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static string DescribeFailure(Exception e)
    {
        var message = new System.Text.StringBuilder("TorchSharp's native backend could not be loaded. ");
        if (MissingBackendLibrary() is { } missing)
        {
            // Nothing else can be wrong yet: say only what to add.
            return message.Append($"The application has no libtorch backend ({missing} is not in its output, {AppContext.BaseDirectory}). ")
                .Append("To fix it, reference a backend package in the application: 'dotnet add package TorchSharp-cpu' ")
                .Append("(or a TorchSharp-cuda package for a GPU), then build again.").ToString();
        }
        string? loader = LoaderError();
        if (loader is not null)
            message.Append("The system loader said: ").Append(loader).Append(' ');
        else
            message.Append("TorchSharp said: ").Append(e.Message.Split('\n')[0]).Append(' ');
        if (OperatingSystem.IsLinux() && loader?.Contains("GLIBCXX_", StringComparison.Ordinal) == true)
        {
            message.Append("To fix it: TorchSharp 0.107 needs GLIBCXX_3.4.32 (libstdc++ from GCC 13), which this system lacks. ")
                .Append("Build the application with 'dotnet build' or 'dotnet publish' so TorchLoss's build step can patch the output copy ")
                .Append("of libLibTorchSharp.so (a project that references TorchLoss's source and publishes must import build/TorchLoss.targets), ")
                .Append("or install libstdc++6 from GCC 13 or newer.");
        }
        return message.ToString();
    }

    // The output folder a portable build keeps natives in (runtimes/<rid>/native), or the app folder for a RID-specific one.
    private static string NativePath(string file)
    {
        string rid = OperatingSystem.IsLinux() ? "linux-x64" : OperatingSystem.IsMacOS() ? "osx-arm64" : "win-x64";
        string path = Path.Combine(AppContext.BaseDirectory, "runtimes", rid, "native", file);
        return File.Exists(path) ? path : Path.Combine(AppContext.BaseDirectory, file);
    }

    /// <summary>The name of libtorch's main library when the application's output lacks it: no backend package was referenced.</summary>
    private static string? MissingBackendLibrary()
    {
        string file = OperatingSystem.IsLinux() ? "libtorch_cpu.so" : OperatingSystem.IsMacOS() ? "libtorch_cpu.dylib" : "torch_cpu.dll";
        return File.Exists(NativePath(file)) ? null : file;
    }

    // TorchSharp hides the dlopen error; loading the library ourselves recovers it (e.g. "version GLIBCXX_3.4.32 not found").
    private static string? LoaderError()
    {
        string file = OperatingSystem.IsLinux() ? "libLibTorchSharp.so" : OperatingSystem.IsMacOS() ? "libLibTorchSharp.dylib" : "LibTorchSharp.dll";
        string path = NativePath(file);
        if (!File.Exists(path))
            return $"{file} is not in the application's output ({AppContext.BaseDirectory}).";
        try
        {
            NativeLibrary.Free(NativeLibrary.Load(path));
            return null;
        }
        catch (Exception e)
        {
            return e.Message;
        }
    }

    internal static class Native
    {
        [DllImport("libc", CharSet = CharSet.Ansi)]
        public static extern IntPtr getenv(string name);

        [DllImport("libc", CharSet = CharSet.Ansi)]
        public static extern int setenv(string name, string value, int overwrite);
    }
}
