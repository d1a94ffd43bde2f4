using System.Runtime.InteropServices;
using TorchLoss.TestSupport;

namespace TorchLoss.Tests.NativeLoading;

/// <summary>
/// The wait policy TorchBackend reports is the one OpenMP read. The child-process tests of TinyLM check that a
/// process which loads libtorch through <see cref="TorchBackend.EnsureLoaded"/> gets passive waits; this checks the
/// other order, where libtorch (and with it OpenMP) was loaded first, as in this test host.
/// </summary>
[Collection(ProcessWideStateCollection.Name)]
public sealed class TorchBackendTests
{
    private const string Variable = "OMP_WAIT_POLICY";

    [LinuxFact("TorchLoss reads /proc/self/maps to see whether OpenMP has loaded.")]
    public void A_policy_chosen_after_OpenMP_has_loaded_is_neither_set_nor_reported()
    {
        using var _ = TorchSharp.torch.zeros(1);   // loads libtorch, and OpenMP with it
        Assert.True(TorchBackend.OpenMpIsLoaded(), "libtorch loads OpenMP (libgomp), so it is mapped now");

        string? saved = Marshal.PtrToStringUTF8(TorchBackend.Native.getenv(Variable));
        Assert.Equal(0, Libc.unsetenv(Variable));
        try
        {
            Assert.Null(TorchBackend.ChooseWaitPolicy());      // OpenMP runs with its default: nothing is in force
            Assert.Equal(IntPtr.Zero, TorchBackend.Native.getenv(Variable));  // and nothing was set that OpenMP will never read

            Assert.Equal(0, TorchBackend.Native.setenv(Variable, "ACTIVE", 1));
            Assert.Equal("ACTIVE", TorchBackend.ChooseWaitPolicy());   // a user's variable, present at load, is reported
        }
        finally
        {
            if (saved is null) Libc.unsetenv(Variable);
            else TorchBackend.Native.setenv(Variable, saved, 1);
        }
    }

    // TorchBackend needs only getenv and setenv; the test also removes the variable.
    private static class Libc
    {
        [DllImport("libc", CharSet = CharSet.Ansi)]
        public static extern int unsetenv(string name);
    }
}
