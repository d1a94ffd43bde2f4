using TorchSharp;

namespace TorchLoss.Kernels;

/// <summary>
/// The one place the CPU kernels fan work out to threads. It honours libtorch's intra-op thread count
/// (<c>torch.set_num_threads</c>, e.g. TinyLM's <c>--threads 1</c>), so a user who limits torch limits TorchLoss too.
/// </summary>
internal static class KernelParallel
{
    /// <summary>The number of threads the kernels may use: libtorch's intra-op setting, at least 1.</summary>
    public static int MaxThreads => Math.Max(1, torch.get_num_threads());

    /// <summary>Runs <paramref name="body"/> for every index in [0, <paramref name="count"/>), on at most <see cref="MaxThreads"/> threads.</summary>
    public static void For(long count, Action<long> body)
    {
        int threads = MaxThreads;
        if (count <= 1 || threads == 1)
        {
            for (long i = 0; i < count; i++) body(i);
            return;
        }
        Parallel.For(0L, count, new ParallelOptions { MaxDegreeOfParallelism = threads }, body);
    }

    /// <summary>
    /// Splits <paramref name="rows"/> rows of <paramref name="rowLength"/> elements into tasks of about
    /// <paramref name="elementsPerTask"/> elements (whole rows, at least one) and runs <paramref name="body"/>(first, end)
    /// for each range, so small inputs stay on the calling thread and large ones use every allowed thread.
    /// </summary>
    public static void ForRows(long rows, long rowLength, long elementsPerTask, Action<long, long> body)
    {
        long rowsPerTask = Math.Max(1, elementsPerTask / Math.Max(1, rowLength));
        long tasks = (rows + rowsPerTask - 1) / rowsPerTask;
        For(tasks, task =>
        {
            long first = task * rowsPerTask;
            body(first, Math.Min(rows, first + rowsPerTask));
        });
    }
}
