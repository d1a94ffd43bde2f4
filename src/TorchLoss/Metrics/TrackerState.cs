using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss.Metrics;

/// <summary>
/// The tensors of a tracker that live together on one device, each declared once with its dtype and shape (in the
/// spirit of torchmetrics' <c>add_state</c>): the group starts on the CPU, moves to the device of the first update
/// (<see cref="PinTo"/>), and is merged (added), reset (zeroed) and disposed as a whole, so a new total is one
/// <see cref="Add"/> line. Besides totals a group holds local tensors (a rolling window, a buffer: they move, reset and
/// are freed with the group but are never merged) and constants (bin edges: they only move and are freed).
/// The tensors are kept out of every <see cref="DisposeScope"/>.
/// </summary>
internal sealed class TrackerState : IDisposable
{
    private readonly List<StateTensor> _tensors = [];
    private bool _disposed;

    /// <summary>The device the tensors are on: the CPU until <see cref="PinTo"/>.</summary>
    public Device Device { get; private set; } = CPU;

    /// <summary>Whether <see cref="PinTo"/> has fixed the device.</summary>
    public bool IsPinned { get; private set; }

    /// <summary>Declares a zero-filled total: added by <see cref="Merge"/>, zeroed by <see cref="Reset"/>.</summary>
    public StateTensor Add(ScalarType dtype, params long[] shape) => Declare(zeros(shape, dtype), StateRole.Total);

    /// <summary>Declares a zero-filled local tensor (a window, a buffer): zeroed by <see cref="Reset"/>, never merged.</summary>
    public StateTensor Local(ScalarType dtype, params long[] shape) => Declare(zeros(shape, dtype), StateRole.Local);

    /// <summary>Declares a constant (e.g. bin edges): it moves and is disposed with the group, but is never merged or reset.</summary>
    /// <param name="value">The value; the group takes it over.</param>
    public StateTensor Constant(Tensor value) => Declare(value, StateRole.Constant);

    /// <summary>Moves every tensor to <paramref name="device"/> the first time; afterwards the device stays (later inputs are copied to it).</summary>
    public void PinTo(Device device)
    {
        if (IsPinned) return;
        IsPinned = true;
        if (IsOn(device)) return;
        foreach (var state in _tensors) state.MoveTo(device);
        Device = device;
    }

    /// <summary>
    /// Adds <paramref name="other"/>'s totals to these (copied from its device), after pinning to its device if it is
    /// pinned and this group is not. Local tensors and constants are left alone; <paramref name="other"/> is unchanged.
    /// </summary>
    /// <exception cref="InvalidOperationException">The groups were declared differently.</exception>
    public void Merge(TrackerState other)
    {
        if (other._tensors.Count != _tensors.Count)
            throw new InvalidOperationException($"Tracker states of {_tensors.Count} and {other._tensors.Count} tensors cannot be merged.");
        for (int i = 0; i < _tensors.Count; i++)
        {
            if (_tensors[i].Role != other._tensors[i].Role)
                throw new InvalidOperationException($"Tracker state {i} is a {_tensors[i].Role} here and a {other._tensors[i].Role} in the other.");
            if (_tensors[i].Role != StateRole.Total) continue;   // a window or buffer may differ in size
            Tensor mine = _tensors[i].Value, theirs = other._tensors[i].Value;
            if (mine.dtype != theirs.dtype || !mine.shape.SequenceEqual(theirs.shape))
                throw new InvalidOperationException(
                    $"Tracker state {i} is {mine.dtype} {InputChecks.Shape(mine)} here and {theirs.dtype} {InputChecks.Shape(theirs)} in the other.");
        }
        if (other.IsPinned) PinTo(other.Device);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        for (int i = 0; i < _tensors.Count; i++)
            if (_tensors[i].Role == StateRole.Total) _tensors[i].Value.add_(other._tensors[i].Value.to(Device));
    }

    /// <summary>Zeroes every total and local tensor; constants and the device stay.</summary>
    public void Reset()
    {
        using var scope = NewDisposeScope();   // in-place ops hand back new handles; let the scope free them
        foreach (var state in _tensors)
            if (state.Role != StateRole.Constant) state.Value.zero_();
    }

    /// <summary>Frees every tensor.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var state in _tensors) state.Value.Dispose();
    }

    /// <summary>Whether the group is on <paramref name="device"/>.</summary>
    public bool IsOn(Device device) => device.type == Device.type && device.index == Device.index;

    private StateTensor Declare(Tensor value, StateRole role)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var state = new StateTensor(value.DetachFromDisposeScope(), role);
        _tensors.Add(state);
        if (!IsOn(value.device)) state.MoveTo(Device);
        return state;
    }
}

/// <summary>One tensor of a <see cref="TrackerState"/>. Hold the handle, not <see cref="Value"/>: moving the group replaces the tensor.</summary>
internal sealed class StateTensor
{
    internal StateTensor(Tensor value, StateRole role)
    {
        Value = value;
        Role = role;
    }

    /// <summary>The tensor now; replaced when the group moves.</summary>
    public Tensor Value { get; private set; }

    /// <summary>What merging and resetting do with it.</summary>
    internal StateRole Role { get; }

    /// <summary>Copies the values to the host (a device synchronisation), flattened.</summary>
    public double[] ReadDoubles()
    {
        using var scope = NewDisposeScope();
        return Value.cpu().data<double>().ToArray();
    }

    /// <inheritdoc cref="ReadDoubles"/>
    public long[] ReadLongs()
    {
        using var scope = NewDisposeScope();
        return Value.cpu().data<long>().ToArray();
    }

    /// <summary>Replaces the values with <paramref name="values"/> (as many as the tensor holds, flattened).</summary>
    public void Load(double[] values)
    {
        using var scope = NewDisposeScope();
        Value.copy_(tensor(values).reshape(Value.shape));
    }

    /// <inheritdoc cref="Load(double[])"/>
    public void Load(long[] values)
    {
        using var scope = NewDisposeScope();
        Value.copy_(tensor(values).reshape(Value.shape));
    }

    internal void MoveTo(Device device)
    {
        var moved = Value.to(device).DetachFromDisposeScope();
        Value.Dispose();
        Value = moved;
    }
}

/// <summary>How a <see cref="TrackerState"/> treats one of its tensors.</summary>
internal enum StateRole
{
    /// <summary>Added by merge, zeroed by reset.</summary>
    Total,

    /// <summary>Zeroed by reset, never merged (it belongs to this tracker only).</summary>
    Local,

    /// <summary>Neither merged nor reset.</summary>
    Constant,
}
