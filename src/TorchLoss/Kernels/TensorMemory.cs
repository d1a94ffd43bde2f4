using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace TorchLoss.Kernels;

/// <summary>Raw access to the memory of contiguous CPU tensors, for the kernels.</summary>
internal static unsafe class TensorMemory
{
    /// <summary>The address of the first element of <paramref name="tensor"/>, which must be a contiguous CPU tensor of <typeparamref name="T"/>.</summary>
    /// <remarks>TorchSharp's span accessors stop at 2 GiB, and logits of a large vocabulary can be bigger.</remarks>
    public static T* Pointer<T>(Tensor tensor) where T : unmanaged
    {
        if (tensor.device_type != TorchSharp.DeviceType.CPU || !tensor.is_contiguous() || tensor.element_size() != sizeof(T))
            throw new ArgumentException($"Expected a contiguous CPU tensor of {typeof(T).Name}, got {tensor.dtype} on {tensor.device}, contiguous: {tensor.is_contiguous()}.", nameof(tensor));
        if (tensor.numel() == 0) return null;
        var address = THSTensor_data(tensor.Handle);
        if (address == IntPtr.Zero)
            throw new InvalidOperationException("libtorch returned no data pointer for a non-empty tensor.");
        return (T*)address;
    }

    // The binding's own export: tensor->data_ptr(), storage offset included.
    [DllImport("LibTorchSharp")]
    private static extern IntPtr THSTensor_data(IntPtr handle);
}
