using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss;

/// <summary>
/// Knowledge distillation: the divergence between a teacher's next-token distribution and a student's, both given as
/// logits over the last dimension and softened by a temperature. The target is a whole distribution instead of one
/// index, so by CE = H + KL the student's cross-entropy against the teacher can fall to the teacher's entropy, and
/// the KL to 0. No gradient flows to the teacher. Mix in hard labels by adding a causal <see cref="TokenCrossEntropy"/>.
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
    /// <param name="lossMask">
    /// Optional bool [...] (the logits' shape without V): true = the position is counted. With
    /// <see cref="DistillationOptions.Causal"/> it is aligned with the tokens [B, T] instead: true = this token is learned.
    /// </param>
    /// <param name="normalizer">
    /// Optional total of counted positions across all micro-batches of one optimiser step; when given the loss is
    /// Σ loss / normalizer, so accumulated gradients equal the full-batch gradient (as in <see cref="TokenCrossEntropy"/>).
    /// </param>
    /// <exception cref="ArgumentException">Shapes, dtypes or devices disagree, or the normalizer is invalid.</exception>
    public DistillationResult Compute(Tensor studentLogits, Tensor teacherLogits, Tensor? lossMask = null, long? normalizer = null)
    {
        InputChecks.CheckLogits(studentLogits, nameof(studentLogits));
        InputChecks.CheckLogits(teacherLogits, nameof(teacherLogits));
        if (Options.Causal) InputChecks.CheckSequenceBatch(studentLogits, nameof(studentLogits), "V");
        InputChecks.CheckSameShape(studentLogits, nameof(studentLogits), teacherLogits, nameof(teacherLogits),
            "both must describe the same positions over the same vocabulary");
        InputChecks.CheckSameDevice(teacherLogits, nameof(teacherLogits), studentLogits, nameof(studentLogits));
        long[] positions = studentLogits.shape[..^1];
        InputChecks.CheckMask(lossMask, positions, studentLogits, nameof(lossMask),
            "studentLogits' positions");
        InputChecks.CheckNormalizer(normalizer, Options.Reduction);

        using var scope = NewDisposeScope();
        long classes = studentLogits.shape[^1];
        var student = studentLogits.reshape(-1, classes);
        var teacher = teacherLogits.detach().reshape(-1, classes);
        // Null when every position counts (no mask, not causal): the composed path then needs no masking at all.
        var counted = TargetPreparation.MaskedPositions(positions, lossMask, Options.Causal, student.device);
        var result = FusedDistillationPath.IsSelected(student, teacher, Options)
            ? FusedDistillationPath.Compute(student, teacher, counted ?? ones(student.size(0), ScalarType.Bool), Options, normalizer, positions)
            : DistillationComputation.Compute(student, teacher, counted, Options, normalizer, positions);
        return result.MoveToOuterDisposeScope();
    }
}
