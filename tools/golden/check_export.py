#!/usr/bin/python3
"""Loads a TinyGpt export (TinyLM --export DIR) into the nanoGPT architecture with strict=True, from both weight files.

    /usr/bin/python3 tools/golden/check_export.py DIR [--prompt TEXT --tokens N]

Checks that model.pt and model.safetensors hold the same tensors and that each loads strictly, then, for a character
model (meta.json), continues the prompt greedily: the text equals what `TinyLM --temperature 0` sampled from the same
weights (TinyGpt feeds back at most block_size - 1 tokens, as done here).
"""
import argparse
import json
import os

import torch

from nanogpt_arch import GPT, Config, load_safetensors


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export", help="folder written by TinyLM --export")
    parser.add_argument("--prompt", default=None, help="text to continue greedily (needs meta.json)")
    parser.add_argument("--tokens", type=int, default=100, help="tokens to generate")
    args = parser.parse_args()

    config = Config.read(os.path.join(args.export, "config.json"))
    pt = torch.load(os.path.join(args.export, "model.pt"))
    st = load_safetensors(os.path.join(args.export, "model.safetensors"))
    if sorted(pt) != sorted(st) or not all(torch.equal(pt[k], st[k]) for k in pt):
        raise SystemExit("model.pt and model.safetensors differ")
    model = GPT(config)
    model.load_state_dict(pt, strict=True)
    model.load_state_dict(st, strict=True)
    model.eval()
    print(f"loaded {len(pt)} tensors strictly from model.pt and model.safetensors: {config}")

    if args.prompt is not None:
        with open(os.path.join(args.export, "meta.json"), encoding="utf-8") as f:
            meta = json.load(f)
        stoi, itos = meta["stoi"], meta["itos"]
        ids = torch.tensor([[stoi[c] for c in args.prompt]])
        with torch.no_grad():
            for _ in range(args.tokens):
                logits = model(ids[:, -(config.block_size - 1):])[:, -1, :]
                ids = torch.cat([ids, logits.argmax(-1, keepdim=True)], dim=1)
        print("".join(itos[i] for i in ids[0].tolist()))


if __name__ == "__main__":
    main()
