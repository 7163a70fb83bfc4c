#!/usr/bin/env python3
"""The PyTorch baseline of the CUDA engine's benchmark: the dense backbone of MODEL.md written in plain
PyTorch (GPT-2 layout: learned positions, pre-LayerNorm blocks, tanh GELU, causal SDPA, untied LM head),
trained on random tokens with fp32 parameters, bf16 autocast, gradient clipping and fused AdamW (weight
decay on the matrices and embeddings only), eager or under torch.compile.

Prints one Markdown table row and writes a JSON line with tokens/s (median over the timed steps), MFU
(model FLOPs per token as bench/engine/run_h200.sh counts them, over 989 TFLOP/s) and peak memory
(torch.cuda.max_memory_allocated and max_memory_reserved over the whole run).

  python3 bench/engine/torch_baseline.py --config samples/bench-h200.toml --mode compile [--steps 10]
"""
import argparse
import json
import math
import statistics
import sys
import time
import tomllib

import torch
import torch.nn.functional as F
from torch import nn

PEAK_FLOPS = 989e12  # dense bf16 of an H100/H200 SXM, as docs/bench-cuda.md counts MFU


class Block(nn.Module):
    def __init__(self, C, H, Fd):
        super().__init__()
        self.H = H
        self.ln_1 = nn.LayerNorm(C, eps=1e-5)
        self.c_attn = nn.Linear(C, 3 * C)
        self.c_proj = nn.Linear(C, C)
        self.ln_2 = nn.LayerNorm(C, eps=1e-5)
        self.c_fc = nn.Linear(C, Fd)
        self.mlp_proj = nn.Linear(Fd, C)

    def forward(self, h):
        B, T, C = h.shape
        qkv = self.c_attn(self.ln_1(h)).view(B, T, 3, self.H, C // self.H)
        q, k, v = (t.transpose(1, 2) for t in qkv.unbind(2))  # [B, H, T, D], heads in order
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        h = h + self.c_proj(o.transpose(1, 2).reshape(B, T, C))
        return h + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(h)), approximate="tanh"))


class Model(nn.Module):
    def __init__(self, m):
        super().__init__()
        V, T, C, H, L, Fd = (m["vocab_size"], m["seq_len"], m["d_model"], m["n_heads"], m["n_layers"], m["d_ff"])
        self.wte = nn.Embedding(V, C)
        self.wpe = nn.Embedding(T, C)
        self.h = nn.ModuleList(Block(C, H, Fd) for _ in range(L))
        self.ln_f = nn.LayerNorm(C, eps=1e-5)
        self.lm_head = nn.Linear(C, V, bias=False)
        # MODEL.md's initialisation: normal(0, 0.02), c_proj weights normal(0, 0.02 / sqrt(2L)), biases 0
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                std = 0.02 / math.sqrt(2 * L) if name.endswith("c_proj.weight") or name.endswith("mlp_proj.weight") else 0.02
                nn.init.normal_(p, 0.0, std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, x, y):
        T = x.shape[1]
        h = self.wte(x) + self.wpe(torch.arange(T, device=x.device))
        for block in self.h:
            h = block(h)
        logits = self.lm_head(self.ln_f(h))
        return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1))


def flops_per_token(m):
    """6 x active parameters (every layer's matrices and biases, LayerNorms, the LM head; no embedding
    lookups) + 12 x layers x sequence x d_model, as bench/engine/run_h200.sh."""
    C, Fd, V, L, T = m["d_model"], m["d_ff"], m["vocab_size"], m["n_layers"], m["seq_len"]
    active = L * ((4 * C * C + 4 * C) + (2 * C * Fd + Fd + C) + 4 * C) + V * C
    return 6 * active + 12 * L * T * C


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="samples/bench-h200.toml")
    ap.add_argument("--mode", choices=["eager", "compile"], default="eager")
    ap.add_argument("--steps", type=int, default=10, help="timed steps")
    ap.add_argument("--warmup", type=int, default=3, help="steps before timing (compilation happens here)")
    ap.add_argument("--sdpa", choices=["default", "flash", "cudnn"], default="default",
                    help="the attention backend: PyTorch's choice, or one forced")
    ap.add_argument("--json", default="", help="append the result as a JSON line to this file")
    ap.add_argument("--profile", default="",
                    help="after the timed steps, two more under torch.profiler, written to this Kineto trace "
                         "(.json or .json.gz; `moescope-cli import` reads it)")
    args = ap.parse_args()

    with open(args.config, "rb") as f:
        cfg = tomllib.load(f)
    m, tr = cfg["model"], cfg["train"]
    if m.get("n_experts", 0) > 0:
        print(f"{args.config}: the dense backbone is measured (n_experts {m['n_experts']} -> 0)", file=sys.stderr)
    if m["d_model"] % m["n_heads"]:
        sys.exit(f"{args.config}: d_model must be a multiple of n_heads")
    torch.manual_seed(tr.get("seed", 1234))
    dev = torch.device("cuda")
    model = Model(m).to(dev)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": tr["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
        lr=tr["lr"], betas=(tr["beta1"], tr["beta2"]), eps=tr["eps"], fused=True)
    run = torch.compile(model) if args.mode == "compile" else model
    B, T, V = tr["global_batch"], m["seq_len"], m["vocab_size"]
    gen = torch.Generator(device=dev).manual_seed(tr.get("seed", 1234))

    backends = {"default": None, "flash": torch.nn.attention.SDPBackend.FLASH_ATTENTION,
                "cudnn": torch.nn.attention.SDPBackend.CUDNN_ATTENTION}

    def step():
        x = torch.randint(0, V, (B, T + 1), device=dev, generator=gen)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            if backends[args.sdpa] is None:
                loss = run(x[:, :-1], x[:, 1:])
            else:
                with torch.nn.attention.sdpa_kernel(backends[args.sdpa]):
                    loss = run(x[:, :-1], x[:, 1:])
        loss.backward()
        if tr.get("grad_clip", 0) > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), tr["grad_clip"])
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(args.warmup):
        loss = step()
    torch.cuda.synchronize()
    warm_s = time.perf_counter() - t0
    times = []
    for _ in range(args.steps):
        t = time.perf_counter()
        loss = step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    tps = B * T / med
    fpt = flops_per_token(m)
    result = {
        "mode": args.mode, "sdpa": args.sdpa, "config": args.config, "torch": torch.__version__,
        "cudnn": torch.backends.cudnn.version(), "device": torch.cuda.get_device_name(),
        "tokens_per_s": tps, "step_ms": med * 1e3, "mfu": tps * fpt / PEAK_FLOPS, "flops_per_token": fpt,
        "peak_allocated_gb": torch.cuda.max_memory_allocated() / 1e9,
        "peak_reserved_gb": torch.cuda.max_memory_reserved() / 1e9,
        "warmup_s": warm_s, "loss": float(loss), "step_ms_all": [t * 1e3 for t in times],
    }
    print(f"| PyTorch {torch.__version__} {args.mode} (sdpa {args.sdpa}) | {tps:,.0f} | {100 * result['mfu']:.1f}% | "
          f"{result['peak_allocated_gb']:.1f} GB ({result['peak_reserved_gb']:.1f} reserved) | "
          f"{med * 1e3:.1f} ms | warm-up {warm_s:.0f} s |")
    if args.json:
        with open(args.json, "a") as f:
            f.write(json.dumps(result) + "\n")
    if args.profile:
        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            for _ in range(2):
                step()
            torch.cuda.synchronize()
        prof.export_chrome_trace(args.profile)


if __name__ == "__main__":
    main()
