#!/usr/bin/python3
"""Makes the golden values CalibrationTracker's ECE and MCE are compared against: torchmetrics' multiclass
calibration error, and the same definition on the tracker's version-independent edges.

Run with Debian's PyTorch (python3-torch, 1.13), from the repository root:

    /usr/bin/python3 tools/golden/make_calibration_golden.py

torchmetrics is not installed here, so this script re-implements its published rule (from the semantics of
torchmetrics/functional/classification/calibration_error.py: _multiclass_calibration_error_update, _ce_compute,
_binning_bucketize), not its code:
  * rows whose target equals ignore_index are dropped; logits (values outside [0, 1]) go through softmax;
  * confidence = top-1 probability, accuracy = (argmax == target), both cast to float32;
  * edges = torch.linspace(0, 1, M + 1) in float32; bin = bucketize(confidence, edges, right=True) - 1, which gives
    [e_b, e_(b+1)) for b < M and a bin M of its own to confidence exactly 1; M + 1 bins;
  * per bin float32 sums (scatter_add) of count, confidence and accuracy; ECE = Σ |acc_b − conf_b| · n_b / N,
    MCE = max_b |acc_b − conf_b| (empty bins give 0).
The tracker bins the same float32 confidences against e_b = b/M correctly rounded to float32 and sums in float64
(the float64 confidences of float64 logits, as it does).
Both are written out: "torchmetrics" (float32, this torch's linspace edges) and "tracker" (float64 sums, e_b).

Only a row's top-1 confidence and correctness enter ECE and MCE, so a row is stored as (c, top, target) and stands
for float64 logits [V]: log c at class `top`, log((1 − c)/(V − 1)) elsewhere (−1000 when c = 1); the test builds
the same logits. The float32 confidences are then the same under both libtorch versions (c is rounded to float32
after a float64 softmax, ~1e-16 off). Rows: c a float32 on or beside an edge (b/M rounded to float32, this torch's
linspace edge, and the float32 neighbours of each), c = 1, and random c in [2/V, 1). Writes
tests/TorchLoss.Tests/Metrics/Fixtures/calibration_golden.json.
"""
import json
import os

import numpy as np
import torch

IGNORE = -100
V = 128  # top-1 confidence >= 1/V, so edges down to 0.0078 can be hit exactly


def f32(x):
    return float(np.float32(x))


def rn_edges(m):
    """e_b = b/M correctly rounded to float32 (the double b/M rounds to the same float32 for these M)."""
    return [f32(b / m) for b in range(m + 1)]


def edge_confidences(m):
    lin = torch.linspace(0, 1, m + 1, dtype=torch.float32).tolist()
    confidences = set()
    for b in range(1, m + 1):
        for e in {rn_edges(m)[b], lin[b]}:
            for c in (e, float(np.nextafter(np.float32(e), np.float32(0))), float(np.nextafter(np.float32(e), np.float32(2)))):
                if 2.0 / V <= c <= 1.0:
                    confidences.add(c)
    return sorted(confidences)


def logits_of(rows):
    """The float64 logits a (c, top, target) row stands for (the C# test builds the same)."""
    out = torch.empty(len(rows), V, dtype=torch.float64)
    for r, (c, top, _) in enumerate(rows):
        rest = -1000.0 if c == 1.0 else float(np.log((1.0 - c) / (V - 1)))
        out[r] = rest
        out[r, top] = float(np.log(c))
    return out


def bins_and_errors(confidence, accuracy, edges, dtype, summed=None):
    """Bins float32 `confidence` against `edges`; sums `summed` (default: `confidence`) in `dtype`."""
    m = len(edges) - 1
    summed = confidence if summed is None else summed
    index = torch.bucketize(confidence, torch.tensor(edges, dtype=torch.float32), right=True) - 1
    count = torch.zeros(m + 1, dtype=dtype).scatter_add_(0, index, torch.ones_like(confidence, dtype=dtype))
    conf = torch.zeros(m + 1, dtype=dtype).scatter_add_(0, index, summed.to(dtype))
    acc = torch.zeros(m + 1, dtype=dtype).scatter_add_(0, index, accuracy.to(dtype))
    conf = torch.nan_to_num(conf / count)
    acc = torch.nan_to_num(acc / count)
    prop = count / count.sum()
    gap = (acc - conf).abs()
    return [int(c) for c in count.tolist()], float((gap * prop).sum()), float(gap.max())


def case(m, seed):
    generator = torch.Generator().manual_seed(seed)
    edge = edge_confidences(m) + [1.0, 1.0]
    rows = [(c, 0, int(t)) for c, t in zip(edge, torch.randint(0, 2, (len(edge),), generator=generator).tolist())]
    for _ in range(300):
        c = 2.0 / V + (1 - 2.0 / V) * float(torch.rand(1, generator=generator, dtype=torch.float64)) ** 0.3
        top, target = torch.randint(0, 3, (2,), generator=generator).tolist()
        rows.append((c, top, target))
    rows = [(c, top, IGNORE if r % 13 == 5 else t) for r, (c, top, t) in enumerate(rows)]
    logits = logits_of(rows)
    targets = torch.tensor([t for _, _, t in rows])
    kept = targets != IGNORE
    p = logits[kept].softmax(1)
    confidence64, prediction = p.max(1)
    confidence = confidence64.float()
    accuracy = prediction.eq(targets[kept]).float()
    lin = torch.linspace(0, 1, m + 1, dtype=torch.float32).tolist()
    tm_counts, tm_ece, tm_mce = bins_and_errors(confidence, accuracy, lin, torch.float32)
    tr_counts, tr_ece, tr_mce = bins_and_errors(confidence, accuracy, rn_edges(m), torch.float64, summed=confidence64)
    return {
        "bins": m,
        "classes": V,
        "rows": [[c, top, t] for c, top, t in rows],
        "certain_tokens": int((confidence == 1.0).sum()),
        "tracker": {"bin_counts": tr_counts, "ece": tr_ece, "mce": tr_mce, "edges": rn_edges(m)},
        "torchmetrics": {"bin_counts": tm_counts, "ece": tm_ece, "mce": tm_mce, "edges": lin},
        # Edges b where this torch's float32 linspace is not b/M rounded to float32: only there can the bins differ.
        "linspace_differs_at": [b for b in range(m + 1) if lin[b] != rn_edges(m)[b]],
    }


def main():
    cases = [case(m, seed) for seed, m in enumerate([1, 3, 4, 10, 15, 32, 100])]
    out = {
        "torch": torch.__version__,
        "note": "torchmetrics' multiclass rule re-implemented (see make_calibration_golden.py); edges of this torch's linspace",
        "cases": cases,
    }
    path = os.path.join("tests", "TorchLoss.Tests", "Metrics", "Fixtures", "calibration_golden.json")
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
    for c in cases:
        tm, tr = c["torchmetrics"], c["tracker"]
        print(f"M={c['bins']:3d} rows={len(c['rows'])} certain={c['certain_tokens']} linspace differs at {c['linspace_differs_at']} "
              f"ECE tm {tm['ece']:.9f} tracker {tr['ece']:.9f} | MCE tm {tm['mce']:.9f} tracker {tr['mce']:.9f} "
              f"counts {'same' if tm['bin_counts'] == tr['bin_counts'] else 'differ'}")
    print("wrote", path)


if __name__ == "__main__":
    main()
