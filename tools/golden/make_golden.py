#!/usr/bin/python3
"""Makes the PyTorch golden fixtures that TinyGpt's interop tests compare against.

Run with Debian's PyTorch (apt-get install python3-torch libopenblas0-pthread), from the repository root:

    /usr/bin/python3 tools/golden/make_golden.py

It builds a tiny nanoGPT-architecture model (2 layers, 2 heads, 32 dims, context 16, vocabulary 65, seed 1337)
and writes to tests/TorchLoss.Examples.Tests/Interop/Fixtures:

    config.json           the model's shape, as nanoGPT's GPTConfig fields
    nanogpt.pt            torch.save(model.state_dict()), the tied embedding stored once as PyTorch does
    nanogpt.safetensors   the same tensors as safetensors (both tied names, each its own copy)
    nanogpt_ckpt.pt       the same weights as nanoGPT's train.py checkpoints them: {'model': state_dict (with
                          torch.compile's _orig_mod. prefix), 'optimizer': AdamW state, 'model_args': ..., ...}
    golden.safetensors    ids [B, T], targets [B, T] (ids shifted by one), PyTorch's logits [B, T, V], its mean
                          cross-entropy loss [] and the gradients of two parameters (grad.<name>)
    golden.json           the same numbers' provenance: PyTorch version, seed, loss, which gradients

The weights are drawn wider than nanoGPT's N(0, 0.02) initialisation and every bias and LayerNorm parameter is
non-trivial: at initialisation the logits are nearly uniform, and a comparison there could pass with a wrong
LayerNorm bias, GELU form or attention scale.
"""
import argparse
import json
import os
from dataclasses import asdict

import torch
import torch.nn.functional as F

from nanogpt_arch import GPT, Config, save_safetensors

SEED = 1337
BATCH = 3
GRADIENTS = ["transformer.h.0.attn.c_attn.weight", "lm_head.weight"]


def randomize(model, generator):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("wte.weight") or name.endswith("lm_head.weight"):
                p.normal_(0.0, 0.5, generator=generator)
            elif name.endswith("wpe.weight"):
                p.normal_(0.0, 0.3, generator=generator)
            elif ".ln_" in name or name.startswith("transformer.ln_f"):
                p.normal_(1.0 if name.endswith("weight") else 0.0, 0.2, generator=generator)
            elif name.endswith("bias"):
                p.normal_(0.0, 0.1, generator=generator)
            else:
                p.normal_(0.0, 1.0 / p.shape[1] ** 0.5, generator=generator)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default_out = os.path.join(here, "..", "..", "tests", "TorchLoss.Examples.Tests", "Interop", "Fixtures")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=default_out, help="folder for the fixtures")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    torch.manual_seed(SEED)
    generator = torch.Generator().manual_seed(SEED)
    config = Config(block_size=16, vocab_size=65, n_layer=2, n_head=2, n_embd=32)
    model = GPT(config)
    randomize(model, generator)
    model.eval()

    tokens = torch.randint(0, config.vocab_size, (BATCH, config.block_size + 1), generator=generator)
    ids, targets = tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()
    logits = model(ids)
    loss = F.cross_entropy(logits.reshape(-1, config.vocab_size), targets.reshape(-1))
    loss.backward()

    state = model.state_dict()
    config.write(os.path.join(args.out, "config.json"))
    torch.save(state, os.path.join(args.out, "nanogpt.pt"))
    save_safetensors(os.path.join(args.out, "nanogpt.safetensors"), state)
    golden = {"ids": ids, "targets": targets, "logits": logits.detach(), "loss": loss.detach()}
    golden.update({f"grad.{name}": model.get_parameter(name).grad for name in GRADIENTS})
    save_safetensors(os.path.join(args.out, "golden.safetensors"), golden)
    with open(os.path.join(args.out, "golden.json"), "w", encoding="utf-8") as f:
        json.dump({
            "made_by": "tools/golden/make_golden.py",
            "torch_version": torch.__version__,
            "seed": SEED,
            "batch": list(ids.shape),
            "loss": loss.item(),
            "gradients": GRADIENTS,
            "state_dict_keys": list(state.keys()),
        }, f, indent=2)
        f.write("\n")

    # A step at learning rate 0 fills AdamW's moments (as in a real checkpoint) and leaves the weights bit for bit.
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.0, weight_decay=0.1)
    before = {k: v.clone() for k, v in state.items()}
    optimizer.step()
    if not all(torch.equal(before[k], v) for k, v in state.items()):
        raise RuntimeError("the learning-rate-0 step moved the weights")
    torch.save({
        "model": {"_orig_mod." + k: v for k, v in state.items()},
        "optimizer": optimizer.state_dict(),
        "model_args": asdict(config),
        "iter_num": 1,
        "best_val_loss": loss.detach(),
        "config": {"dataset": "golden", "learning_rate": 0.0, "compile": True},
    }, os.path.join(args.out, "nanogpt_ckpt.pt"))
    print(f"PyTorch {torch.__version__}: loss {loss.item():.6f}, logits std {logits.std().item():.3f}, wrote {args.out}")


if __name__ == "__main__":
    main()
