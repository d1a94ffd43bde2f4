using System.Diagnostics;

namespace TorchLoss.Benchmarks;

/// <summary>
/// Paired, interleaved timing in one process: every repetition runs each variant once, in a rotating order,
/// so slow phases of a shared machine hit all variants alike. Reports medians and the median of the per-repetition ratios.
/// </summary>
public static class PairedRunner
{
    private const double MinimumSeconds = 20;
    private const int MaximumRepetitions = 300;

    /// <summary>Times every case (at least <paramref name="repetitions"/> rounds) and prints a Markdown table.</summary>
    public static void Run(IEnumerable<Case> cases, int repetitions, TextWriter output)
    {
        output.WriteLine("| case | variant | median ms | ratio to first (median of pairs) | ratio quartiles | repetitions |");
        output.WriteLine("| --- | --- | ---: | ---: | ---: | ---: |");
        foreach (var c in cases)
        {
            using var workload = c.Create();
            var times = Time(c.Variants, workload, repetitions, MinimumSeconds);
            for (int i = 0; i < c.Variants.Count; i++)
            {
                var ratios = times[i].Zip(times[0], (a, b) => a / b).ToList();
                output.WriteLine($"| {c.Name} | {c.Variants[i].Name} | {FormatMilliseconds(Median(times[i]))} | {Median(ratios):F3} | {Quantile(ratios, 0.25):F3}–{Quantile(ratios, 0.75):F3} | {times[i].Count} |");
            }
            foreach (var (of, to) in c.Ratios ?? [])
            {
                int a = IndexOf(c, of), b = IndexOf(c, to);
                var ratios = times[a].Zip(times[b], (x, y) => x / y).ToList();
                output.WriteLine($"| {c.Name} | {of} / {to} | | {Median(ratios):F3} | {Quantile(ratios, 0.25):F3}–{Quantile(ratios, 0.75):F3} | {ratios.Count} |");
            }
            output.Flush();
        }
    }

    private static int IndexOf(Case c, string variant) =>
        c.Variants.Select((v, i) => (v, i)).FirstOrDefault(p => p.v.Name == variant, (null!, -1)).Item2 is int i and >= 0
            ? i : throw new ArgumentException($"Case {c.Name} has no variant '{variant}'.", nameof(variant));

    private const int WarmUpCalls = 200;
    private const double WarmUpSeconds = 0.5;
    private const int CompilerPauseMilliseconds = 20;

    /// <summary>Cheap calls are timed in batches of this many milliseconds or more, so one sample is not a single 0.1 ms call.</summary>
    private const double MinimumSampleMilliseconds = 5;

    /// <summary>Calls shorter than this get an untimed lead-in call before each sample; longer ones do not need it.</summary>
    private const double LeadInBelowMilliseconds = 100;

    /// <summary>
    /// Runs every variant twice to warm up (JIT, allocator, thread pools), then in rounds: at least
    /// <paramref name="repetitions"/>, more for cheap workloads (up to about <paramref name="minimumSeconds"/> of rounds,
    /// at most <see cref="MaximumRepetitions"/>), so their medians are as stable as the slow ones'. The order of the
    /// variants changes from round to round so that every variant runs after every other equally often (a call
    /// inherits the caches and the thread pools' state its predecessor left). A sample of a cheap workload is a batch
    /// of calls of one variant, at least <see cref="MinimumSampleMilliseconds"/> long. Returns the milliseconds per
    /// call of each variant per round.
    /// </summary>
    public static List<double>[] Time(IReadOnlyList<Variant> variants, object workload, int repetitions, double minimumSeconds)
    {
        var times = variants.Select(_ => new List<double>()).ToArray();
        foreach (var v in variants) v.TimedCall(workload); // the first call of each compiles and allocates
        var warmUp = Stopwatch.StartNew();
        foreach (var v in variants) v.TimedCall(workload);
        double singleRoundSeconds = Math.Max(warmUp.Elapsed.TotalSeconds, 1e-4);
        // .NET first runs a method as unoptimised tier-0 code and recompiles it optimised only after about 30 calls
        // and a short delay; cheap cases must get there before they are timed, or the managed kernels are measured
        // unoptimised (several times slower) against libtorch's native code. Expensive cases reach it on the spot
        // (loops are optimised while they run), so the warm-up stops after half a second.
        int warmUpRounds = 0;
        var sinceWarmUp = Stopwatch.StartNew();
        for (; warmUpRounds < WarmUpCalls && warmUp.Elapsed.TotalSeconds < WarmUpSeconds; warmUpRounds++)
        {
            foreach (var v in variants) v.TimedCall(workload);
            if (warmUpRounds % 16 == 15) Thread.Sleep(CompilerPauseMilliseconds);   // gives the background compiler its turn
        }
        // Enough warm-up rounds time one round better than the single one above (the pauses taken out).
        if (warmUpRounds >= 16)
            singleRoundSeconds = (sinceWarmUp.Elapsed.TotalSeconds - CompilerPauseMilliseconds / 1000.0 * (warmUpRounds / 16)) / warmUpRounds;
        double callMilliseconds = 1000 * singleRoundSeconds / variants.Count;
        int callsPerSample = Math.Clamp((int)Math.Ceiling(MinimumSampleMilliseconds / callMilliseconds), 1, 10_000);
        double roundSeconds = singleRoundSeconds * callsPerSample;
        int rounds = Math.Clamp((int)Math.Ceiling(minimumSeconds / roundSeconds), repetitions, MaximumRepetitions);
        var orders = BalancedOrders(variants.Count);
        bool leadIn = callMilliseconds < LeadInBelowMilliseconds;
        for (int r = 0; r < rounds; r++)
        {
            // A round's first call then follows the same pause whichever variant it is, so across round boundaries
            // too every variant follows every other (and the pause) equally often.
            Thread.Sleep(1);
            foreach (int i in orders[r % orders.Count])
            {
                // A call inherits the caches and the thread pools' state from the call before it, which costs
                // cheap calls up to 15 % (seen as an A/A ratio ≠ 1 that followed the variant's place in the order).
                // An untimed call of the same variant first makes every timed call follow its own kind.
                if (leadIn) variants[i].TimedCall(workload);
                double elapsed = 0;
                for (int c = 0; c < callsPerSample; c++) elapsed += variants[i].TimedCall(workload);
                times[i].Add(elapsed / callsPerSample);
            }
        }
        return times;
    }

    /// <summary>
    /// Orders of 0 … <paramref name="count"/> − 1 in which every index directly follows every other index equally
    /// often within the orders, and comes first equally often (a Williams design: <paramref name="count"/> orders for
    /// an even count, twice as many for an odd one).
    /// </summary>
    public static IReadOnlyList<int[]> BalancedOrders(int count)
    {
        // First order 0, 1, n−1, 2, n−2, …; the others add r (mod n) to it.
        var first = new int[count];
        for (int k = 0, low = 1, high = count - 1; k < count; k++)
            first[k] = k == 0 ? 0 : k % 2 == 1 ? low++ : high--;
        var orders = new List<int[]>();
        for (int r = 0; r < count; r++)
            orders.Add(first.Select(i => (i + r) % count).ToArray());
        if (count % 2 == 1)
            orders.AddRange(orders.Select(o => o.Reverse().ToArray()).ToList());
        return orders;
    }

    // Three significant digits down to 0.001 ms: batched samples time sub-0.1 ms calls too.
    private static string FormatMilliseconds(double ms) =>
        ms.ToString(ms >= 100 ? "F1" : ms >= 10 ? "F2" : "F3", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The <paramref name="q"/>-quantile of <paramref name="values"/> (linear between neighbours): the spread of the ratios.</summary>
    public static double Quantile(IEnumerable<double> values, double q)
    {
        var sorted = values.Order().ToList();
        double at = q * (sorted.Count - 1);
        int low = (int)Math.Floor(at);
        int high = Math.Min(low + 1, sorted.Count - 1);
        return sorted[low] + (at - low) * (sorted[high] - sorted[low]);
    }

    /// <summary>The median of <paramref name="values"/>.</summary>
    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        int n = sorted.Count;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }
}
