using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace TorchLoss.Kernels;

/// <summary>
/// What autograd knows about a tensor that TorchSharp 0.107 does not expose: whether it is a view, and its version
/// counter. Read from libtorch's own <c>at::TensorBase</c> members (a TorchSharp handle is an <c>at::Tensor*</c>).
/// </summary>
/// <remarks>
/// The entry points are the Itanium-ABI names of libtorch 2.x on Linux and macOS. Where they are missing (another
/// ABI or libtorch build) <see cref="IsAvailable"/> is false and callers must refuse what they cannot check.
/// </remarks>
internal static class AutogradState
{
    private static readonly Lazy<bool> available = new(Probe);

    /// <summary>Whether the members can be called in this process.</summary>
    public static bool IsAvailable => available.Value;

    /// <summary>True when <paramref name="tensor"/> is a view of another tensor (shares its storage and version counter).</summary>
    public static bool IsView(Tensor tensor) => TensorIsView(tensor.Handle) != 0;

    /// <summary>The version counter of <paramref name="tensor"/>, which every in-place operation on it or on a view of it increments.</summary>
    public static long Version(Tensor tensor) => TensorVersion(tensor.Handle);

    /// <summary>
    /// Marks <paramref name="tensor"/> as modified in place (increments its version counter) without touching its
    /// values: autograd then refuses, in backward, every node that saved it before, instead of using changed values.
    /// </summary>
    public static void MarkModified(Tensor tensor)
    {
        using var _ = no_grad();
        using var empty = tensor.view(-1).narrow(0, 0, 0);
        empty.zero_();
    }

    private static bool Probe()
    {
        try
        {
            using var probe = zeros(2);
            using var view = probe.narrow(0, 0, 1);
            return IsView(view) && !IsView(probe) && Version(probe) == 0;
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            return false;
        }
    }

    [DllImport("torch_cpu", EntryPoint = "_ZNK2at10TensorBase7is_viewEv")]
    private static extern byte TensorIsView(IntPtr tensor);

    [DllImport("torch_cpu", EntryPoint = "_ZNK2at10TensorBase8_versionEv")]
    private static extern long TensorVersion(IntPtr tensor);
}
