using System.Runtime.InteropServices;

namespace TinyLM;

/// <summary>
/// Keeps large native blocks out of glibc's heap. glibc raises its mmap threshold (up to 32 MiB) each time it frees a
/// mapped block, so after the first few frees the validation pass's per-chunk logits and softmax (a sequence of
/// GPT-2 logits is 24.5 MiB) come from the heap, whose fragments are not returned to the system: a 20-step
/// <c>--fused-head</c> run grew to 4.5 GB resident over one validation pass that never holds more than a few hundred MiB.
/// A fixed threshold keeps every block of at least <see cref="ThresholdBytes"/> mapped, returned to the system when freed.
/// </summary>
internal static class NativeHeap
{
    /// <summary>Blocks of at least this size are mapped on their own.</summary>
    public const int ThresholdBytes = 1 << 20;

    private const int MmapThreshold = -3; // M_MMAP_THRESHOLD in glibc's malloc.h

    /// <summary>Fixes glibc's mmap threshold at <see cref="ThresholdBytes"/>; false where that is not glibc (nothing changes then).</summary>
    public static bool MapLargeBlocks()
    {
        if (!OperatingSystem.IsLinux())
            return false;
        try
        {
            return mallopt(MmapThreshold, ThresholdBytes) == 1;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    [DllImport("libc")]
    private static extern int mallopt(int parameter, int value);
}
