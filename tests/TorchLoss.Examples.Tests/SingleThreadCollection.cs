namespace TorchLoss.Examples.Tests;

/// <summary>Tests that set torch's (process-wide) thread count run alone, so they slow no other test.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SingleThreadCollection
{
    /// <summary>The collection's name.</summary>
    public const string Name = "Single torch thread";
}
