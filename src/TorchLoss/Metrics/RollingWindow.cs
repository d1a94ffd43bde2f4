using static TorchSharp.torch;

namespace TorchLoss.Metrics;

/// <summary>
/// The last <see cref="Size"/> updates of a <see cref="PerplexityTracker"/>: each update's NLL and counts in a ring
/// of device slots (written in place, never read back per update), and on the host whether it reported bytes and words.
/// Its tensors are local tensors of the tracker's <see cref="TrackerState"/>: they move with it and are never merged.
/// </summary>
internal sealed class RollingWindow
{
    private readonly StateTensor _nll;      // float64 [W]: the NLL of each update in the window (0 when skipped)
    private readonly StateTensor _counts;   // int64 [W, columns]: the counts of each update in the window
    private readonly bool[] _hasBytes;
    private readonly bool[] _hasWords;
    private long _added;

    /// <summary>Declares a window of <paramref name="size"/> updates of <paramref name="countColumns"/> counts in <paramref name="state"/>.</summary>
    public RollingWindow(int size, int countColumns, TrackerState state)
    {
        Size = size;
        _nll = state.Local(ScalarType.Float64, size);
        _counts = state.Local(ScalarType.Int64, size, countColumns);
        _hasBytes = new bool[size];
        _hasWords = new bool[size];
    }

    /// <summary>How many updates the window covers when full.</summary>
    public int Size { get; }

    /// <summary>The updates it covers now: <see cref="Size"/>, fewer at the start.</summary>
    public int Filled => (int)Math.Min(_added, Size);

    /// <summary>
    /// Puts an update in the oldest slot: its NLL (float64 scalar) and counts (int64 [columns]), on the state's device,
    /// and whether it reported its bytes and words.
    /// </summary>
    public void Add(Tensor nll, Tensor counts, bool hasBytes, bool hasWords)
    {
        long slot = _added % Size;
        using (var scope = NewDisposeScope())
        {
            _nll.Value[slot].copy_(nll);
            _counts.Value[slot].copy_(counts);
        }
        _hasBytes[slot] = hasBytes;
        _hasWords[slot] = hasWords;
        _added++;
    }

    /// <summary>The window's Σ NLL and Σ counts (one device read), and whether every update in it reported bytes and words.</summary>
    public (double Nll, long[] Counts, bool AllBytes, bool AllWords) Totals()
    {
        using var scope = NewDisposeScope();
        double nll = _nll.Value.sum().cpu().item<double>();
        long[] counts = _counts.Value.sum(dim: 0).cpu().data<long>().ToArray();
        int filled = Filled;
        return (nll, counts, _hasBytes.AsSpan(0, filled).IndexOf(false) < 0, _hasWords.AsSpan(0, filled).IndexOf(false) < 0);
    }

    /// <summary>Empties the window.</summary>
    public void Clear()
    {
        using (var scope = NewDisposeScope())
        {
            _nll.Value.zero_();
            _counts.Value.zero_();
        }
        Array.Clear(_hasBytes);
        Array.Clear(_hasWords);
        _added = 0;
    }
}
