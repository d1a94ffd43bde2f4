namespace TorchLoss.Sft;

/// <summary>A half-open range [<see cref="Start"/>, <see cref="End"/>) of character positions in a rendered text.</summary>
/// <param name="Start">The first character.</param>
/// <param name="End">One past the last character.</param>
public readonly record struct CharSpan(int Start, int End)
{
    /// <summary>The number of characters.</summary>
    public int Length => End - Start;

    /// <summary>
    /// Whether the range [<paramref name="start"/>, <paramref name="end"/>) shares at least one character
    /// with this span. Empty ranges overlap nothing.
    /// </summary>
    public bool Overlaps(int start, int end) => start < End && Start < end && start < end && Start < End;

    /// <summary>The text of this span.</summary>
    public string Of(string text) => text[Start..End];

    /// <inheritdoc/>
    public override string ToString() => $"[{Start}, {End})";
}
