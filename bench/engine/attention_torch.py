#!/usr/bin/env python3
"""PyTorch SDPA's flash and cuDNN backends at the shapes cuda_kernels_bench times moescope's attention:
B 16, H 16, causal, T 1024 and 2048, head sizes 128 and 64, bf16, q/k/v as views of one packed
[B, T, 3, H, D] tensor (moescope's layout). Forward and backward timed apart with CUDA events (median
of the calls after warm-up). TFLOP/s counts causal work as cuda_kernels_bench does: half of
4·B·H·T²·D forward, 2.5 times that backward.

  python3 bench/engine/attention_torch.py [--iters 30] [--json FILE]
"""
import argparse
import json
import statistics

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel


def timed(fn, iters, warmup=5):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    B, H = 16, 16
    rows = []
    print(f"PyTorch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}, {torch.cuda.get_device_name()}\n")
    print("| backend | shape | forward ms | forward TFLOP/s | backward ms | backward TFLOP/s |")
    print("|---|---|---:|---:|---:|---:|")
    for T in (1024, 2048):
        for D in (128, 64):
            gen = torch.Generator(device="cuda").manual_seed(T + D)
            qkv = torch.randn(B, T, 3, H, D, device="cuda", dtype=torch.bfloat16, generator=gen)
            dout = torch.randn(B, H, T, D, device="cuda", dtype=torch.bfloat16, generator=gen)
            # leaves with the packed layout's strides: the gradients come back as dq, dk, dv, unassembled
            q, k, v = (t.transpose(1, 2).detach().requires_grad_() for t in qkv.unbind(2))
            flops = 2.0 * B * H * T * T * D
            for name, backend in (("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION)):
                shape = f"B{B} T{T} H{H} D{D}"
                try:
                    with sdpa_kernel(backend):
                        fwd = timed(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True), args.iters)
                        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
                        bwd = timed(lambda: torch.autograd.grad(out, (q, k, v), dout, retain_graph=True), args.iters)
                except RuntimeError as e:
                    print(f"| {name} | {shape} | failed: {str(e).splitlines()[0]} | | | |")
                    continue
                row = {"backend": name, "T": T, "D": D, "forward_ms": fwd, "backward_ms": bwd,
                       "forward_tflops": flops / fwd / 1e9, "backward_tflops": 2.5 * flops / bwd / 1e9}
                rows.append(row)
                print(f"| torch {name} | {shape} | {fwd:.3f} | {row['forward_tflops']:.1f} | {bwd:.3f} | "
                      f"{row['backward_tflops']:.1f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"torch": torch.__version__, "cudnn": torch.backends.cudnn.version(), "rows": rows}, f)


if __name__ == "__main__":
    main()
