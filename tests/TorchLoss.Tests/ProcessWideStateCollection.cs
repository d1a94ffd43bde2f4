namespace TorchLoss.Tests;

/// <summary>
/// Tests that change or measure process-wide state (libtorch's thread count, the global tensor count, resident
/// memory) run in this collection: alone, after the parallel ones, so other tests neither disturb nor see them.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessWideStateCollection
{
    public const string Name = "Process-wide state";
}
