using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss;

/// <summary>
/// Everything one distillation evaluation produced: the tensor to backpropagate and detached float64 totals over
/// the counted positions, of the temperature-softened distributions P (teacher) and Q (student), in nats.
/// They satisfy <see cref="CrossEntropySum"/> = <see cref="TeacherEntropySum"/> + <see cref="KlDivergenceSum"/>
/// (up to rounding): the lesson's CE = H + KL, per batch.
/// </summary>
public sealed class DistillationResult : IDisposable
{
    internal DistillationResult(Tensor loss, Tensor teacherEntropySum, Tensor crossEntropySum, Tensor klDivergenceSum, Tensor divergenceSum, Tensor positionCount)
    {
        Loss = loss;
        TeacherEntropySum = teacherEntropySum;
        CrossEntropySum = crossEntropySum;
        KlDivergenceSum = klDivergenceSum;
        DivergenceSum = divergenceSum;
        PositionCount = positionCount;
        _tensors = new ResultTensors(loss, teacherEntropySum, crossEntropySum, klDivergenceSum, divergenceSum, positionCount);
    }

    private readonly ResultTensors _tensors;

    /// <summary>What to backpropagate: the configured divergence (times τ² unless turned off), reduced or normalised as configured.</summary>
    public Tensor Loss { get; }

    /// <summary>Σ H(P), the teacher's entropy, over counted positions; detached float64 scalar.</summary>
    public Tensor TeacherEntropySum { get; }

    /// <summary>Σ H(P, Q) = −Σ P log Q, the student's cross-entropy against the teacher, over counted positions; detached float64 scalar.</summary>
    public Tensor CrossEntropySum { get; }

    /// <summary>Σ KL(P‖Q) over counted positions, whatever divergence is trained; detached float64 scalar.</summary>
    public Tensor KlDivergenceSum { get; }

    /// <summary>Σ of the configured divergence (not scaled by τ²) over counted positions; equals <see cref="KlDivergenceSum"/> for the forward KL.</summary>
    public Tensor DivergenceSum { get; }

    /// <summary>Number of counted positions; int64 scalar.</summary>
    public Tensor PositionCount { get; }

    /// <summary>Moves all tensors out of the current <see cref="DisposeScope"/>, e.g. to keep the result past a training step.</summary>
    public DistillationResult MoveToOuterDisposeScope()
    {
        _tensors.MoveToOuterDisposeScope();
        return this;
    }

    /// <summary>Disposes everything but <see cref="Loss"/> and returns it: what the module's <c>forward</c> hands back.</summary>
    internal Tensor TakeLoss() => _tensors.TakeFirst();

    /// <summary>Disposes the tensors.</summary>
    public void Dispose() => _tensors.Dispose();
}
