#!/usr/bin/python3
"""Makes the golden values the preference-loss tests compare against, from the published definitions.

Run with Debian's PyTorch (python3-torch, 1.13), from the repository root:

    /usr/bin/python3 tools/golden/make_preference_golden.py

Everything is float64 and written out directly from the formulas of the papers (DPO, conservative DPO, SLiC's hinge
as TRL writes it, IPO, robust DPO, SimPO with CPO's NLL term, ORPO), not from any trainer's code: a plain
log_softmax + gather gives each sequence's log-probability, then the per-pair loss is evaluated term by term and its
mean over pairs is differentiated by autograd. Writes tests/TorchLoss.Tests/Preference/Fixtures/preference_golden.json:

    inputs       policy and reference logits [2B, T, V] (rows [0, B) chosen, [B, 2B) rejected), unshifted labels [2B, T]
                 (-100 = not scored) and a completion mask [2B, T]; rows padded on the left and on the right, and
                 one-token answers
    sequence     per-sequence Σ log p, mean log p and token count of the policy logits
    cases        per loss configuration: the per-pair losses, the mean loss, the rewards and d(mean loss)/d(policy logits)
"""
import json
import math
import os

import torch
import torch.nn.functional as F

IGNORE = -100
B, T, V = 3, 8, 11


def make_inputs(generator):
    policy = torch.randn(2 * B, T, V, generator=generator, dtype=torch.float64) * 2.0
    reference = policy + torch.randn(2 * B, T, V, generator=generator, dtype=torch.float64) * 0.7
    ids = torch.randint(0, V, (2 * B, T), generator=generator)
    # (padding side, real length, prompt length) per row: the answer is the real tokens after the prompt.
    layout = [
        ("right", 8, 3),  # chosen 0: 5 answer tokens, no padding
        ("right", 6, 5),  # chosen 1: a one-token answer, right padding
        ("left", 7, 3),   # chosen 2: left padding
        ("right", 7, 3),  # rejected 0
        ("left", 6, 3),   # rejected 1: left padding
        ("left", 5, 4),   # rejected 2: a one-token answer, left padding
    ]
    labels = ids.clone()
    mask = torch.zeros(2 * B, T, dtype=torch.bool)
    for row, (side, length, prompt) in enumerate(layout):
        start = T - length if side == "left" else 0
        real = torch.zeros(T, dtype=torch.bool)
        real[start:start + length] = True
        labels[row][~real] = IGNORE
        mask[row, start + prompt:start + length] = True
    return policy, reference, labels, mask


def sequence_logps(logits, labels, mask):
    """Position t scores label t+1; a label counts where it is not IGNORE and the mask is true."""
    targets = labels[:, 1:]
    counted = (targets != IGNORE) & mask[:, 1:]
    logp = torch.log_softmax(logits[:, :-1], dim=-1)
    picked = logp.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    picked = torch.where(counted, picked, torch.zeros_like(picked))
    total = picked.sum(-1)
    count = counted.sum(-1)
    return total, total / count, count


def log_odds(m):
    return m - torch.log1p(-torch.exp(m))


def pair_losses(case, policy_sum, policy_mean, ref_sum, ref_mean):
    kind = case["loss"]
    beta = case["beta"]
    mean = case["score"] == "Mean"
    pc, pr = (policy_mean if mean else policy_sum).chunk(2)
    if kind in ("SimPo", "Orpo"):
        if kind == "SimPo":
            losses = -F.logsigmoid(beta * pc - beta * pr - case.get("gamma", 0.0)) + case.get("alpha", 0.0) * (-pc)
        else:
            losses = -pc - case.get("lambda", 0.1) * F.logsigmoid(log_odds(pc) - log_odds(pr))
        return losses, beta * pc, beta * pr
    rc, rr = (ref_mean if mean else ref_sum).chunk(2)
    h = (pc - rc) - (pr - rr)
    e = case.get("eps", 0.0)
    if kind == "Dpo":
        losses = -(1 - e) * F.logsigmoid(beta * h) - e * F.logsigmoid(-beta * h)
    elif kind == "Hinge":
        losses = torch.relu(1 - beta * h)
    elif kind == "Ipo":
        losses = (h - 1 / (2 * beta)) ** 2
    elif kind == "RobustDpo":
        losses = ((1 - e) * -F.logsigmoid(beta * h) + e * F.logsigmoid(-beta * h)) / (1 - 2 * e)
    else:
        raise ValueError(kind)
    return losses, beta * (pc - rc), beta * (pr - rr)


CASES = [
    {"loss": "Dpo", "beta": 0.1, "score": "Sum"},
    {"loss": "Dpo", "beta": 0.5, "score": "Sum", "eps": 0.2},
    {"loss": "Dpo", "beta": 0.3, "score": "Mean"},
    {"loss": "Dpo", "beta": 0.3, "score": "Mean", "eps": 0.1},
    {"loss": "Hinge", "beta": 0.7, "score": "Sum"},
    {"loss": "Hinge", "beta": 2.0, "score": "Mean"},
    {"loss": "Ipo", "beta": 0.1, "score": "Mean"},
    {"loss": "Ipo", "beta": 0.5, "score": "Sum"},
    {"loss": "RobustDpo", "beta": 0.2, "score": "Sum", "eps": 0.1},
    {"loss": "RobustDpo", "beta": 0.2, "score": "Mean", "eps": 0.3},
    {"loss": "SimPo", "beta": 2.0, "score": "Mean", "gamma": 0.5},
    {"loss": "SimPo", "beta": 2.5, "score": "Mean", "gamma": 1.2, "alpha": 0.3},
    {"loss": "Orpo", "beta": 0.1, "score": "Mean"},
    {"loss": "Orpo", "beta": 0.2, "score": "Mean", "lambda": 0.5},
]


def main():
    generator = torch.Generator().manual_seed(20261207)
    policy, reference, labels, mask = make_inputs(generator)
    seq_sum, seq_mean, seq_count = sequence_logps(policy, labels, mask)
    ref_sum, ref_mean, _ = sequence_logps(reference, labels, mask)
    seq_grad = torch.autograd.functional.jacobian(lambda x: sequence_logps(x, labels, mask)[0].sum(), policy)

    cases = []
    for case in CASES:
        x = policy.clone().requires_grad_(True)
        s, m, _ = sequence_logps(x, labels, mask)
        losses, chosen_rewards, rejected_rewards = pair_losses(case, s, m, ref_sum, ref_mean)
        loss = losses.mean()
        (grad,) = torch.autograd.grad(loss, x)
        cases.append({
            **case,
            "pair_losses": losses.tolist(),
            "mean_loss": loss.item(),
            "chosen_rewards": chosen_rewards.tolist(),
            "rejected_rewards": rejected_rewards.tolist(),
            "gradient": grad.flatten().tolist(),
        })

    golden = {
        "torch": torch.__version__,
        "shape": [2 * B, T, V],
        "ignore_index": IGNORE,
        "policy_logits": policy.flatten().tolist(),
        "reference_logits": reference.flatten().tolist(),
        "labels": labels.flatten().tolist(),
        "completion_mask": mask.flatten().tolist(),
        "sequence": {
            "sum": seq_sum.tolist(),
            "mean": seq_mean.tolist(),
            "count": seq_count.tolist(),
            "gradient_of_total": seq_grad.flatten().tolist(),
        },
        "cases": cases,
    }
    out = os.path.join("tests", "TorchLoss.Tests", "Preference", "Fixtures", "preference_golden.json")
    with open(out, "w") as f:
        json.dump(golden, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {out}: {len(cases)} cases, torch {torch.__version__}")


if __name__ == "__main__":
    main()
