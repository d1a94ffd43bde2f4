using System.Runtime.InteropServices;
using TorchSharp;

namespace TorchLoss;

/// <summary>
/// Loads TorchSharp's native backend (libtorch) once, with a thread wait policy that holds up on a busy machine,
/// and turns a failure into an exception that says what failed and what to do, instead of TorchSharp's generic message.
/// </summary>
/// <remarks>
/// libtorch's CPU operators run on OpenMP threads that by default spin while they wait for work. On an idle machine
/// that is a little faster; when other processes compete for the cores, the spinning threads take the cores from the
/// threads that have work and a run becomes 15–30× slower. So, unless the process already has <c>OMP_WAIT_POLICY</c>
/// in its environment, <see cref="EnsureLoaded"/> sets it to <c>PASSIVE</c> before libtorch loads (OpenMP reads it
/// once, at load). Set <c>OMP_WAIT_POLICY=ACTIVE</c> yourself to get the spinning behaviour back. Anything that
/// makes a tensor loads libtorch, so call <see cref="EnsureLoaded"/> first; <see cref="OpenMpWaitPolicy"/> says
/// which policy is in force.
/// </remarks>
public static class TorchBackend
{
    private const string WaitPolicyVariable = "OMP_WAIT_POLICY";
    private static readonly Lazy<Exception?> LoadFailure = new(TryLoad, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>
    /// Loads the CPU backend once per process. Call it at start-up, before any tensor is made, so that the
    /// wait policy applies and a missing or broken backend fails early with a clear message; the loss modules
    /// call it from their constructors too.
    /// </summary>
    /// <exception cref="InvalidOperationException">The native backend cannot be loaded.</exception>
    public static void EnsureLoaded()
    {
        if (LoadFailure.Value is { } failure)
            throw failure;
    }

    /// <summary>
    /// The OpenMP wait policy libtorch's threads use (<c>PASSIVE</c> unless the user chose another), or null where
    /// OpenMP runs with its default, spinning waits: on Windows, where TorchLoss does not set it, and when libtorch
    /// was loaded before <see cref="EnsureLoaded"/> first ran (a tensor made before it, say), too late for a policy
    /// to take effect (detected on Linux). Read it after <see cref="EnsureLoaded"/>.
    /// </summary>
    public static string? OpenMpWaitPolicy => policyInForce;

    private static string? policyInForce;

    private static Exception? TryLoad()
    {
        policyInForce = ChooseWaitPolicy();
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

    // Returns the policy OpenMP will read. The managed environment is a copy on Unix: OpenMP, which reads the C
    // environment, sees only setenv.
    internal static string? ChooseWaitPolicy()
    {
        if (OperatingSystem.IsWindows()) return null;
        string? chosen = Marshal.PtrToStringUTF8(Native.getenv(WaitPolicyVariable));
        if (OpenMpIsLoaded())
            return chosen;   // OpenMP read its environment when it loaded; setting the variable now would change nothing
        if (chosen is not null) return chosen;   // the user's choice stands
        _ = Native.setenv(WaitPolicyVariable, "PASSIVE", 0);
        Environment.SetEnvironmentVariable(WaitPolicyVariable, "PASSIVE");   // and child processes inherit it
        return "PASSIVE";
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
