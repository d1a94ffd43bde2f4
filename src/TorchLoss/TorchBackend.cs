using System.Runtime.InteropServices;
using TorchSharp;

namespace TorchLoss;

/// <summary>
/// Checks that TorchSharp's native backend (libtorch) can be loaded, and turns a failure into an
/// exception that says what failed and what to install, instead of TorchSharp's generic message.
/// </summary>
public static class TorchBackend
{
    private static readonly Lazy<Exception?> LoadFailure = new(TryLoad, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>
    /// Loads the CPU backend once per process. Call it at start-up to fail early with a clear message;
    /// the loss modules call it from their constructors.
    /// </summary>
    /// <exception cref="InvalidOperationException">The native backend cannot be loaded.</exception>
    public static void EnsureLoaded()
    {
        if (LoadFailure.Value is { } failure)
            throw failure;
    }

    private static Exception? TryLoad()
    {
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

    private static string DescribeFailure(Exception e)
    {
        var message = new System.Text.StringBuilder();
        message.Append("TorchSharp's native backend could not be loaded. ");
        if (LoaderError() is { } loader)
            message.Append("The system loader said: ").Append(loader).Append(' ');
        else
            message.Append("TorchSharp said: ").Append(e.Message.Split('\n')[0]).Append(' ');
        message.Append("To fix it: reference a backend package in the application (TorchSharp-cpu, or a TorchSharp-cuda package); ");
        if (OperatingSystem.IsLinux())
        {
            message.Append("on Linux, TorchSharp 0.107 needs GLIBCXX_3.4.32 (libstdc++ from GCC 13). Build the application with ")
                .Append("'dotnet build' so TorchLoss's build step can patch the output copy of libLibTorchSharp.so, ")
                .Append("or install libstdc++6 from GCC 13 or newer.");
        }
        return message.ToString();
    }

    // TorchSharp hides the dlopen error; loading the library ourselves recovers it (e.g. "version GLIBCXX_3.4.32 not found").
    private static string? LoaderError()
    {
        string rid = OperatingSystem.IsLinux() ? "linux-x64" : OperatingSystem.IsMacOS() ? "osx-arm64" : "win-x64";
        string file = OperatingSystem.IsLinux() ? "libLibTorchSharp.so" : OperatingSystem.IsMacOS() ? "libLibTorchSharp.dylib" : "LibTorchSharp.dll";
        // A portable build keeps natives under runtimes/<rid>/native; a RID-specific one puts them beside the app.
        string path = Path.Combine(AppContext.BaseDirectory, "runtimes", rid, "native", file);
        if (!File.Exists(path)) path = Path.Combine(AppContext.BaseDirectory, file);
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
}
