using System.Runtime.InteropServices;
using TorchLoss.TestSupport;

namespace TorchLoss.Tests.NativeLoading;

/// <summary>
/// The wait policy is an application's opt-in. The child-process tests of TinyLM (which opts in) and SkyIsBlue
/// (which does not: the library alone sets nothing) check what OpenMP read at load; this checks the other order, in
/// this test host, where libtorch (and with it OpenMP) loaded first: the opt-in sets nothing and says why.
/// </summary>
[Collection(ProcessWideStateCollection.Name)]
public sealed class TorchBackendTests
{
    private const string Variable = "OMP_WAIT_POLICY";

    [LinuxFact("TorchLoss reads /proc/self/maps to see whether OpenMP has loaded.")]
    public void An_opt_in_after_OpenMP_has_loaded_sets_nothing_and_says_why()
    {
        WithVariable(null, () =>
        {
            using var _ = TorchSharp.torch.zeros(1);   // loads libtorch, and OpenMP with it
            Assert.True(TorchBackend.OpenMpIsLoaded(), "libtorch loads OpenMP (libgomp), so it is mapped now");

            var choice = TorchBackend.UsePassiveOpenMpWaits();
            Assert.False(choice.TookEffect);
            Assert.Null(choice.Policy);                                     // OpenMP runs with its default
            Assert.Contains("already loaded", choice.Reason);
            Assert.Equal(IntPtr.Zero, TorchBackend.Native.getenv(Variable)); // nothing set that OpenMP will never read
        });
        WithVariable("ACTIVE", () =>
        {
            var choice = TorchBackend.UsePassiveOpenMpWaits();
            Assert.False(choice.TookEffect);
            Assert.Equal("ACTIVE", choice.Policy);                           // a user's variable, present at load, is reported
            Assert.Equal("ACTIVE", Marshal.PtrToStringUTF8(TorchBackend.Native.getenv(Variable)));
        });
    }

    // Runs the body with the variable set to value (or removed), then restores it.
    private static void WithVariable(string? value, Action body)
    {
        string? saved = Marshal.PtrToStringUTF8(TorchBackend.Native.getenv(Variable));
        string? savedManaged = Environment.GetEnvironmentVariable(Variable);
        Assert.Equal(0, value is null ? Libc.unsetenv(Variable) : TorchBackend.Native.setenv(Variable, value, 1));
        Environment.SetEnvironmentVariable(Variable, value);
        try
        {
            body();
        }
        finally
        {
            if (saved is null) Libc.unsetenv(Variable);
            else TorchBackend.Native.setenv(Variable, saved, 1);
            Environment.SetEnvironmentVariable(Variable, savedManaged);
        }
    }

    // TorchBackend needs only getenv and setenv; the test also removes the variable.
    private static class Libc
    {
        [DllImport("libc", CharSet = CharSet.Ansi)]
        public static extern int unsetenv(string name);
    }
}
