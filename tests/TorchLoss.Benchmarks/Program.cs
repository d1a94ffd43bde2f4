using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using TorchLoss;
using TorchLoss.Benchmarks;

// Modes (see docs/performance.md):
//   --paired [--quick]   interleaved paired timings in one process: the target cases (--quick) or also the grid
//   --paired --threshold  the small-vocabulary scan behind the automatic backend's threshold
//   --paired --dispatch-grid [--round-budget S] [--min-logits L] [--max-logits L] [--min-rounds R] [--epsilon E]  fused vs libtorch vs Auto over N × V: the evidence for Auto's size rule
//   --memory [--quick]   peak resident memory per variant, each in its own child process
//   --distill             with --paired or --memory: the forward-KL distillation cases instead of cross-entropy
//   --fallback [--small]  with --paired or --memory: the libtorch fallback path (CE ε ∈ {0, 0.1}, three divergences) vs
//                         torch's own code at N=4096, V=32000, or (--small) at N ∈ {64, 512}, V ∈ {2, 65, 1000}
//   --in-place            with --paired or --memory: GradientInPlace vs the built-in and one copy of the logits
//   --preference          with --paired or --memory: the preference-head cases (ChunkedLinearPreferenceLoss vs composed)
//   --case TEXT           with --paired or --memory: only the cases whose name contains TEXT
//   anything else        BenchmarkDotNet, e.g. --filter '*TargetCase*' (add --quick for fewer iterations)
// Before anything touches libtorch: passive OpenMP waits, as TinyLM opts in to them, so the timings are what its users get.
var waits = TorchBackend.UsePassiveOpenMpWaits();
TorchBackend.EnsureLoaded();
if (MemoryRunner.TryRunAsChild(args)) return;
bool quick = args.Contains("--quick");
var cases = args.Contains("--fallback") ? (args.Contains("--small") ? Cases.FallbackSmall().ToList() : Cases.FallbackTargets())
    : args.Contains("--in-place") ? Cases.InPlaceTargets()
    : args.Contains("--distill") ? Cases.DistillationTargets()
    : args.Contains("--preference") ? Cases.PreferenceTargets()
    : args.Contains("--threshold") ? Cases.ThresholdScan().ToList()
    : quick ? Cases.Targets() : Cases.Targets().Concat(Cases.Grid()).ToList();
// --case TEXT: only the cases whose name contains TEXT (e.g. --case "CE N=4096 V=32000 eps=0.1").
if (Array.IndexOf(args, "--case") is int caseAt and >= 0)
    cases = cases.Where(c => c.Name.Contains(args[caseAt + 1], StringComparison.Ordinal)).DistinctBy(c => c.Name).ToList();
Console.WriteLine($"# {Environment.ProcessorCount} logical cores, {System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture}, " +
    $"{System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription}, TorchSharp threads {TorchSharp.torch.get_num_threads()}, OpenMP waits {TorchBackend.OpenMpWaitPolicy ?? "default"} ({waits})");
if (args.Contains("--paired") && args.Contains("--dispatch-grid"))
{
    string? Option(string name) => Array.IndexOf(args, name) is int at and >= 0 ? args[at + 1] : null;
    var invariant = System.Globalization.CultureInfo.InvariantCulture;
    DispatchGridRunner.Run(
        Console.Out,
        Option("--round-budget") is { } budget ? double.Parse(budget, invariant) : 600,
        Option("--min-logits") is { } least ? long.Parse(least, invariant) : 0,
        Option("--max-logits") is { } most ? long.Parse(most, invariant) : long.MaxValue,
        Option("--min-rounds") is { } minimumRounds ? int.Parse(minimumRounds, invariant) : 3,
        Option("--epsilon") is { } epsilon ? double.Parse(epsilon, invariant) : DispatchGridRunner.DefaultEpsilon);
    return;
}
if (args.Contains("--paired"))
{
    PairedRunner.Run(cases, quick ? 5 : 11, Console.Out);
    return;
}
if (args.Contains("--memory"))
{
    MemoryRunner.Run(cases, Console.Out);
    return;
}

// In-process: no generated project to build (the TorchSharp loader patch runs on this project's own build), and
// each iteration is one call: a call takes from milliseconds to seconds.
var job = Job.Default
    .WithToolchain(InProcessEmitToolchain.Instance)
    .WithInvocationCount(1).WithUnrollFactor(1)
    .WithWarmupCount(quick ? 1 : 3)
    .WithIterationCount(quick ? 5 : 15);
var config = DefaultConfig.Instance.AddJob(job.AsDefault()).WithOptions(ConfigOptions.JoinSummary);
BenchmarkSwitcher.FromAssembly(typeof(PairedRunner).Assembly).Run(args.Where(a => a != "--quick").ToArray(), config);
