using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss;

/// <summary>
/// Knowledge distillation: the divergence between a teacher's next-token distribution and a student's, both given as
/// logits over the last dimension and softened by a temperature. The target is a whole distribution instead of one
/// index, so by CE = H + KL the student's cross-entropy against the teacher can fall to the teacher's entropy, and
/// the KL to 0. No gradient flows to the teacher. Mix in hard labels by adding a <see cref="CausalLMLoss"/>.
/// </summary>
/// <example>
/// <code>
/// using var distill = new DistillationLoss(new DistillationOptions { Temperature = 2 });
/// using var result = distill.Compute(student.forward(ids), teacherLogits);   // both [B, T, V]
/// result.Loss.backward();
/// </code>
/// </example>
public sealed class DistillationLoss : nn.Module<Tensor, Tensor, Tensor>
{
    /// <summary>Creates the module; options are validated here and fixed for its lifetime.</summary>
    /// <param name="options">Divergence, temperature, τ² scaling, reduction and backend; <see cref="DistillationOptions.Default"/> when null.</param>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    public DistillationLoss(DistillationOptions? options = null) : base(nameof(DistillationLoss))
    {
        Options = options ?? DistillationOptions.Default;
        Options.Validate();
        TorchBackend.EnsureLoaded();
        RegisterComponents();
    }

    /// <summary>The options this module was built with.</summary>
    public DistillationOptions Options { get; }

    /// <summary>The loss to backpropagate for <paramref name="studentLogits"/> and <paramref name="teacherLogits"/>, both [..., V].</summary>
    public override Tensor forward(Tensor studentLogits, Tensor teacherLogits) => Compute(studentLogits, teacherLogits).TakeLoss();

    /// <summary>Computes the loss and the totals (teacher entropy, cross-entropy, KL, the trained divergence) over counted positions.</summary>
    /// <param name="studentLogits">The student's scores [..., V]; half and bfloat16 are computed in float32.</param>
    /// <param name="teacherLogits">
    /// The teacher's scores for the same positions [..., V] (detached here). −∞ marks tokens the teacher rules out,
    /// e.g. after top-k filtering: they contribute 0·log 0 = 0.
    /// </param>
    /// <param name="lossMask">Optional bool [...] (the logits' shape without V): true = the position is counted.</param>
    /// <param name="normalizer">
    /// Optional total of counted positions across all micro-batches of one optimiser step; when given the loss is
    /// Σ loss / normalizer, so accumulated gradients equal the full-batch gradient (as in <see cref="CausalLMLoss"/>).
    /// </param>
    /// <exception cref="ArgumentException">Shapes, dtypes or devices disagree, or the normalizer is invalid.</exception>
    public DistillationResult Compute(Tensor studentLogits, Tensor teacherLogits, Tensor? lossMask = null, long? normalizer = null)
    {
        CrossEntropyInput.CheckLogits(studentLogits, nameof(studentLogits));
        CrossEntropyInput.CheckLogits(teacherLogits, nameof(teacherLogits));
        if (!studentLogits.shape.SequenceEqual(teacherLogits.shape))
        {
            throw new ArgumentException(
                $"teacherLogits shape {CrossEntropyInput.Shape(teacherLogits)} does not match studentLogits shape {CrossEntropyInput.Shape(studentLogits)}; " +
                "both must describe the same positions over the same vocabulary.", nameof(teacherLogits));
        }
        if (!CrossEntropyInput.SameDevice(studentLogits, teacherLogits))
            throw new ArgumentException($"teacherLogits is on {teacherLogits.device} but studentLogits is on {studentLogits.device}.", nameof(teacherLogits));
        long[] positions = studentLogits.shape[..^1];
        if (lossMask is not null)
        {
            if (lossMask.dtype != ScalarType.Bool)
                throw new ArgumentException($"lossMask must be a bool tensor (true = counted), got {lossMask.dtype}.", nameof(lossMask));
            if (!lossMask.shape.SequenceEqual(positions))
                throw new ArgumentException($"lossMask shape {CrossEntropyInput.Shape(lossMask)} does not match the logits' positions {CrossEntropyInput.Shape(positions)} (shape {CrossEntropyInput.Shape(studentLogits)} without V).", nameof(lossMask));
            if (!CrossEntropyInput.SameDevice(lossMask, studentLogits))
                throw new ArgumentException($"lossMask is on {lossMask.device} but studentLogits is on {studentLogits.device}.", nameof(lossMask));
        }
        CrossEntropyInput.CheckNormalizer(normalizer, Options.Reduction);

        using var scope = NewDisposeScope();
        long classes = studentLogits.shape[^1];
        var student = studentLogits.reshape(-1, classes);
        var teacher = teacherLogits.detach().reshape(-1, classes);
        var counted = lossMask?.reshape(-1) ?? ones(student.shape[0], ScalarType.Bool, student.device);
        var result = FusedDistillationPath.IsSelected(student, teacher, Options)
            ? FusedDistillationPath.Compute(student, teacher, counted, Options, normalizer, positions)
            : DistillationComputation.Compute(student, teacher, counted, Options, normalizer, positions);
        return result.MoveToOuterDisposeScope();
    }
}
