namespace TorchLoss.Sft;

/// <summary>
/// A well-formed conversation that cannot become a training example; <see cref="Reason"/> says why.
/// <see cref="SftExampleBuilder.BuildMany"/> skips these and counts them; malformed input throws a plain
/// <see cref="ArgumentException"/> instead.
/// </summary>
public sealed class SftExampleException : ArgumentException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="reason">Why no example was built.</param>
    /// <param name="message">What happened, with the numbers involved.</param>
    public SftExampleException(SftRejection reason, string message) : base(message) => Reason = reason;

    /// <summary>Why no example was built.</summary>
    public SftRejection Reason { get; }
}
