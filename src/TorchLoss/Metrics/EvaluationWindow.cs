namespace TorchLoss.Metrics;

/// <summary>
/// One window of a sliding-window evaluation: the model reads tokens [<see cref="Start"/>, <see cref="Start"/> +
/// <see cref="Length"/>) and is scored on the window positions from <see cref="FirstScored"/> on; the positions
/// before it are context only, already scored by an earlier window.
/// </summary>
/// <param name="Start">Index of the window's first token in the text.</param>
/// <param name="Length">Number of tokens the model reads.</param>
/// <param name="FirstScored">First window position whose token is predicted and scored (at least 1: position 0 has no context).</param>
public readonly record struct EvaluationWindow(long Start, int Length, int FirstScored)
{
    /// <summary>How many tokens this window scores.</summary>
    public int ScoredTokens => Length - FirstScored;
}
