using System.Globalization;

namespace TorchLoss.Benchmarks;

/// <summary>
/// The evidence for <see cref="CrossEntropyBackend.Auto"/>'s size rule: forward + backward of <see cref="TokenCrossEntropy"/>
/// forced onto the fused kernel, forced onto libtorch, and automatic, paired and interleaved at every point of
/// N × V (ε = 0.1 unless <c>--epsilon</c> says otherwise; 10% of targets ignored). Points whose memory would not fit are reported as skipped.
/// </summary>
public static class DispatchGridRunner
{
    /// <summary>Rows of the grid.</summary>
    public static readonly long[] Rows = [64, 512, 4096, 32768];

    /// <summary>Vocabulary sizes of the grid.</summary>
    public static readonly long[] Classes = [2, 65, 1000, 32000, 128000];

    /// <summary>The label smoothing of the issue's grid (the default of <c>--epsilon</c>).</summary>
    public const double DefaultEpsilon = 0.1;
    private const int Repetitions = 3;
    private const double MinimumSeconds = 15;

    /// <summary>
    /// Peak bytes of the slower (libtorch) path as a multiple of the float32 logits: the logits, the log-probabilities,
    /// their gradient and the logits' gradient (measured with <c>--memory</c>: about 3× the logits above set-up).
    /// </summary>
    private const long PeakLogitCopies = 4;

    /// <summary>Memory left to the other processes of a shared machine.</summary>
    private const long HeadroomBytes = 3L << 30;

    /// <summary>Measures every grid point and prints a Markdown table, with the load average per point.</summary>
    /// <param name="output">Where the table goes.</param>
    /// <param name="roundBudgetSeconds">
    /// Points whose round (one call of each variant) is predicted to take longer, from the speed of the largest
    /// point measured so far, are skipped: on a busy shared machine the largest points can take hours.
    /// </param>
    /// <param name="minimumLogits">Only points with N·V from this on are measured.</param>
    /// <param name="maximumLogits">Only points with N·V up to this are measured (e.g. the small ones, where fixed costs decide).</param>
    /// <param name="minimumRounds">At least this many rounds per point (cheap points get more, up to the runner's limit).</param>
    /// <param name="epsilon">Label smoothing (ε = 0 takes a shorter libtorch path: no separate unsmoothed NLL).</param>
    public static void Run(TextWriter output, double roundBudgetSeconds, long minimumLogits = 0, long maximumLogits = long.MaxValue, int minimumRounds = Repetitions, double epsilon = DefaultEpsilon)
    {
        output.WriteLine($"# dispatch grid, eps={epsilon}, 10% ignored, round budget {roundBudgetSeconds} s; load average at start: {LoadAverage()}");
        output.WriteLine("| N | V | Auto picks | fused ms | libtorch ms | Auto ms | fused / libtorch | Auto / faster | A/A: fused / fused | Auto's decision / faster | rounds | load avg (1 min) | note |");
        output.WriteLine("| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
        double secondsPerLogit = 0;
        long largestMeasured = 0;
        foreach (long rows in Rows)
        foreach (long classes in Classes.Where(c => rows * c >= minimumLogits && rows * c <= maximumLogits))
        {
            long logitBytes = rows * classes * sizeof(float);
            long needed = PeakLogitCopies * logitBytes;
            long available = MemAvailableBytes();
            if (needed > available - HeadroomBytes)
            {
                output.WriteLine(FormattableString.Invariant(
                    $"| {rows} | {classes} | – | | | | | | | | | {LoadAverage()} | skipped: needs ≈ {Gib(needed):F1} GiB ({PeakLogitCopies} × {Gib(logitBytes):F1} GiB of float32 logits), {Gib(available):F1} GiB available |"));
                output.Flush();
                continue;
            }
            double predictedRound = secondsPerLogit * rows * classes;
            if (predictedRound > roundBudgetSeconds)
            {
                output.WriteLine(FormattableString.Invariant(
                    $"| {rows} | {classes} | – | | | | | | | | | {LoadAverage()} | skipped: one round predicted to take ≈ {predictedRound:F0} s, over the budget of {roundBudgetSeconds} s (--round-budget) |"));
                output.Flush();
                continue;
            }
            double roundSeconds = MeasurePoint(rows, classes, epsilon, minimumRounds, output);
            if (rows * classes > largestMeasured)
            {
                // Large points are memory-bound: their time per logit predicts larger ones; small points' does not.
                largestMeasured = rows * classes;
                secondsPerLogit = roundSeconds / largestMeasured;
            }
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
        output.WriteLine($"# load average at end: {LoadAverage()}");
    }

    /// <summary>Measures one point, prints its row and returns the median seconds of one round.</summary>
    private static double MeasurePoint(long rows, long classes, double epsilon, int minimumRounds, TextWriter output)
    {
        using var workload = new CrossEntropyWorkload(rows, classes, epsilon);
        Variant[] variants =
        [
            new("fused", w => ((CrossEntropyWorkload)w).TorchLossFused()),
            new("libtorch", w => ((CrossEntropyWorkload)w).TorchLossLibTorch()),
            new("auto", w => ((CrossEntropyWorkload)w).TorchLoss()),
            new("fused (control)", w => ((CrossEntropyWorkload)w).TorchLossFusedControl()),
        ];
        var times = PairedRunner.Time(variants, workload, minimumRounds, MinimumSeconds);
        double fused = PairedRunner.Median(times[0]), libTorch = PairedRunner.Median(times[1]), auto = PairedRunner.Median(times[2]);
        var faster = fused <= libTorch ? times[0] : times[1];
        double fusedToLibTorch = PairedRunner.Median(times[0].Zip(times[1], (a, b) => a / b));
        double autoToFaster = PairedRunner.Median(times[2].Zip(faster, (a, b) => a / b));
        // Identical code on both sides: the spread of this column over the grid is the noise of "Auto / faster".
        double control = PairedRunner.Median(times[3].Zip(times[0], (a, b) => a / b));
        // What Auto adds to the path it picks is the decision; timed alone, as a share of the faster path.
        double decisionShare = workload.AutoDecisionMicroseconds() / 1000 / Math.Min(fused, libTorch);
        output.WriteLine(FormattableString.Invariant(
            $"| {rows} | {classes} | {(workload.AutoPicksFused ? "fused" : "libtorch")} | {fused:F2} | {libTorch:F2} | {auto:F2} | {fusedToLibTorch:F3} | {autoToFaster:F3} | {control:F3} | {100 * decisionShare:F2} % | {times[0].Count} | {LoadAverage()} | |"));
        output.Flush();
        return (fused + libTorch + auto) / 1000;
    }

    private static double Gib(long bytes) => bytes / (double)(1L << 30);

    private static string LoadAverage() => File.ReadAllText("/proc/loadavg").Split(' ')[0];

    private static long MemAvailableBytes()
    {
        foreach (var line in File.ReadLines("/proc/meminfo"))
        {
            if (line.StartsWith("MemAvailable:", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
        }
        throw new InvalidOperationException("/proc/meminfo has no MemAvailable line.");
    }
}
