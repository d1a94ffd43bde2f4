using TinyGpt;
using TorchSharp;
using static TorchSharp.torch;

namespace TinyLM;

/// <summary>
/// The reference for <c>--compare-builtin</c>: TorchSharp's own <c>nn.CrossEntropyLoss</c> on labels shifted by hand,
/// summed and divided by the step's token count, exactly as one would write it without TorchLoss.
/// </summary>
public sealed class BuiltinCrossEntropyLoss : ITrainingLoss, IDisposable
{
    private readonly nn.Module<Tensor, Tensor, Tensor> loss;
    private readonly nn.Module<Tensor, Tensor, Tensor> nll;

    /// <summary>Creates the loss with PyTorch-convention label smoothing <paramref name="labelSmoothing"/>.</summary>
    public BuiltinCrossEntropyLoss(double labelSmoothing)
    {
        loss = new TorchSharp.Modules.CrossEntropyLoss(ignore_index: -100, reduction: nn.Reduction.Sum, label_smoothing: labelSmoothing);
        nll = nn.CrossEntropyLoss(ignore_index: -100, reduction: nn.Reduction.Sum);
    }

    /// <inheritdoc />
    public (Tensor Loss, Tensor NllSum) Compute(Gpt model, TrainingBatch batch, long normalizer)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(batch);
        using var scope = NewDisposeScope();
        var (value, nllSum) = Compute(model.forward(batch.Ids), batch, normalizer);
        return (value.MoveToOuterDisposeScope(), nllSum.MoveToOuterDisposeScope());
    }

    /// <summary>The same loss on given <paramref name="logits"/> [B, T, V] of <paramref name="batch"/>'s ids.</summary>
    public (Tensor Loss, Tensor NllSum) Compute(Tensor logits, TrainingBatch batch, long normalizer)
    {
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(batch);
        using var scope = NewDisposeScope();
        var (flatLogits, flatTargets) = Shift(logits, batch);
        var value = loss.forward(flatLogits, flatTargets) / normalizer;
        var nllSum = nll.forward(flatLogits.detach(), flatTargets).to(ScalarType.Float64);
        return (value.MoveToOuterDisposeScope(), nllSum.MoveToOuterDisposeScope());
    }

    /// <inheritdoc />
    public long CountTokens(TrainingBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        using var scope = NewDisposeScope();
        var (_, targets) = Shift(null, batch);
        return targets.ne(-100).sum().item<long>();
    }

    // logits[:, :-1] paired with labels[:, 1:], with masked positions set to the ignore index.
    private static (Tensor Logits, Tensor Targets) Shift(Tensor? logits, TrainingBatch batch)
    {
        var labels = batch.Labels;
        if (batch.LossMask is { } mask)
            labels = labels.masked_fill(mask.logical_not(), -100);
        var targets = labels[.., 1..].reshape(-1);
        var shifted = logits is null ? empty(0) : logits[.., ..^1, ..].reshape(-1, logits.shape[2]);
        return (shifted, targets);
    }

    /// <summary>Disposes the modules.</summary>
    public void Dispose()
    {
        loss.Dispose();
        nll.Dispose();
    }
}
