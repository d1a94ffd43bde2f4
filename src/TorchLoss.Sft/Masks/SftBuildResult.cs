namespace TorchLoss.Sft;

/// <summary>What <see cref="SftExampleBuilder.BuildMany"/> made of a collection of conversations.</summary>
/// <param name="Examples">The examples, in input order, without the skipped conversations.</param>
/// <param name="SkippedNoTrainedTokens">Conversations skipped because no token would be trained (<see cref="SftRejection.NoTrainedTokens"/>).</param>
/// <param name="SkippedTooLong">Conversations skipped because even their last exchange does not fit (<see cref="SftRejection.TooLong"/>).</param>
/// <param name="Truncated">Conversations that were shortened to fit (oldest exchanges dropped, or cut).</param>
public sealed record SftBuildResult(IReadOnlyList<SftExample> Examples, int SkippedNoTrainedTokens, int SkippedTooLong, int Truncated)
{
    /// <summary>All skipped conversations.</summary>
    public int Skipped => SkippedNoTrainedTokens + SkippedTooLong;

    /// <summary>The total number of trained tokens over <see cref="Examples"/>.</summary>
    public long TrainedTokenCount => Examples.Sum(e => (long)e.TrainedTokenCount);
}
