using System.Diagnostics;

namespace TorchLoss.Benchmarks;

/// <summary>
/// Paired, interleaved timing in one process: every repetition runs each variant once, in a rotating order,
/// so slow phases of a shared machine hit all variants alike. Reports medians and the median of the per-repetition ratios.
/// </summary>
public static class PairedRunner
{
    private const double MinimumSeconds = 20;
    private const int MaximumRepetitions = 41;

    /// <summary>Times every case (at least <paramref name="repetitions"/> rounds) and prints a Markdown table.</summary>
    public static void Run(IEnumerable<Case> cases, int repetitions, TextWriter output)
    {
        output.WriteLine("| case | variant | median ms | ratio to first (median of pairs) | repetitions |");
        output.WriteLine("| --- | --- | ---: | ---: | ---: |");
        foreach (var c in cases)
        {
            using var workload = c.Create();
            var times = Time(c.Variants, workload, repetitions, MinimumSeconds);
            for (int i = 0; i < c.Variants.Count; i++)
            {
                var ratios = times[i].Zip(times[0], (a, b) => a / b).ToList();
                output.WriteLine($"| {c.Name} | {c.Variants[i].Name} | {Median(times[i]):F1} | {Median(ratios):F3} | {times[i].Count} |");
            }
            output.Flush();
        }
    }

    /// <summary>
    /// Runs every variant twice to warm up (JIT, allocator, thread pools), then in rotating-order rounds: at least
    /// <paramref name="repetitions"/>, more for cheap workloads (up to about <paramref name="minimumSeconds"/> of rounds,
    /// at most 41), so their medians are as stable as the slow ones'. Returns the milliseconds of each variant per round.
    /// </summary>
    private const int WarmUpCalls = 200;
    private const double WarmUpSeconds = 0.5;

    public static List<double>[] Time(IReadOnlyList<Variant> variants, object workload, int repetitions, double minimumSeconds)
    {
        var times = variants.Select(_ => new List<double>()).ToArray();
        foreach (var v in variants) v.Run(workload); // the first call of each compiles and allocates
        var warmUp = Stopwatch.StartNew();
        foreach (var v in variants) v.Run(workload);
        double roundSeconds = Math.Max(warmUp.Elapsed.TotalSeconds, 1e-3);
        // .NET first runs a method as unoptimised tier-0 code and recompiles it optimised only after about 30 calls
        // and a short delay; cheap cases must get there before they are timed, or the managed kernels are measured
        // unoptimised (several times slower) against libtorch's native code. Expensive cases reach it on the spot
        // (loops are optimised while they run), so the warm-up stops after half a second.
        for (int call = 0; call < WarmUpCalls && warmUp.Elapsed.TotalSeconds < WarmUpSeconds; call++)
        {
            foreach (var v in variants) v.Run(workload);
            if (call % 16 == 15) Thread.Sleep(20);   // gives the background compiler its turn
        }
        int rounds = Math.Clamp((int)Math.Ceiling(minimumSeconds / roundSeconds), repetitions, MaximumRepetitions);
        for (int r = 0; r < rounds; r++)
        {
            for (int k = 0; k < variants.Count; k++)
            {
                int i = (k + r) % variants.Count;
                var sw = Stopwatch.StartNew();
                variants[i].Run(workload);
                times[i].Add(sw.Elapsed.TotalMilliseconds);
            }
        }
        return times;
    }

    /// <summary>The median of <paramref name="values"/>.</summary>
    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        int n = sorted.Count;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }
}
