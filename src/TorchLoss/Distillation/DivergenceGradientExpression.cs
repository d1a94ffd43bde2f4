using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TorchLoss;

/// <summary>
/// <see cref="DivergenceRows"/>' closed-form gradient built from differentiable operators, for a backward that records
/// a graph (second derivatives: gradient penalties, Hessian-vector products). Slower and heavier than the no-grad
/// form; used only under <c>create_graph</c>.
/// </summary>
internal static class DivergenceGradientExpression
{
    /// <summary>The gradient of each row's divergence with respect to the softened student logits, up to <see cref="DivergenceRows.GradientFactor"/>.</summary>
    public static Tensor Build(Tensor student, Tensor teacher, DistillationDivergence divergence, double beta, double temperature)
    {
        var s = temperature == 1.0 ? student : student / temperature;
        var t = temperature == 1.0 ? teacher : teacher / temperature;
        var q = F.softmax(s, -1);
        switch (divergence)
        {
            case DistillationDivergence.Forward:
                return q - F.softmax(t, -1);
            case DistillationDivergence.Reverse:
            {
                var difference = F.log_softmax(s, -1) - F.log_softmax(t, -1);
                var present = q.gt(0);
                var weighted = where(present, q * where(present, difference, zeros_like(difference)), zeros_like(q));
                return q * weighted.sum(-1, keepdim: true) - weighted;   // negated, as DivergenceRows stores it
            }
            default:
            {
                if (beta == 0 || beta == 1) return zeros_like(student);
                double lowest = s.dtype == ScalarType.Float64 ? double.MinValue : float.MinValue;
                var logQ = F.log_softmax(s, -1).clamp_min(lowest);
                var logP = F.log_softmax(t, -1).clamp_min(lowest);
                var logM = logaddexp(logP + Math.Log(beta), logQ + Math.Log(1 - beta));
                var weighted = q * (logQ - logM);
                return weighted - q * weighted.sum(-1, keepdim: true);
            }
        }
    }
}
