"""A small GPT trained with torch.cuda.nvtx ranges per micro-batch, for `moescope-cli record` on a GPU.

Each step is "ProfilerStep#<n>" (PyTorch's step marker), each micro-batch's forward and backward a
Megatron-Core pass ("...schedules.forward_step", "...schedules.backward_step", numbered by record from
the schedule), and inside them Megatron's layer sub-ranges (core_attention, linear_fc1, linear_fc2), so
the shipped naming rules give categories, phases, steps and micro-batches.

  python3 gpt_nvtx.py --steps 8 [--profile-steps 4:6 --profile OUT.json] [--times OUT.txt]

Sizes: the defaults are a tiny GPT (d 256, 4 layers, sequence 128, batch 8, vocabulary 1024, fp32) whose
~1,000 kernels a step are shorter than their launches, so the step time is the host's launch time and
every per-launch cost of a profiler shows in full; --d-model, --layers, --heads, --seq, --batch, --vocab
and --bf16 (autocast) make a GPT whose kernels outlast their launches (run_h200_record.sh measures both).
"""
import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

P = "megatron.core."


CUDA = True  # False with --device cpu (a smoke test without a GPU): no NVTX, no synchronisation


def push(name):
    if CUDA:
        torch.cuda.nvtx.range_push(name)


def pop():
    if CUDA:
        torch.cuda.nvtx.range_pop()


def synchronize():
    if CUDA:
        torch.cuda.synchronize()


def nvtx(name):
    class Range:
        def __enter__(self):
            push(name)

        def __exit__(self, *a):
            pop()

    return Range()


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x):
        b, t, d = x.shape
        with nvtx(P + "transformer.attention.forward.core_attention"):
            q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
            q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
        with nvtx(P + "transformer.mlp.forward.linear_fc1"):
            h = F.gelu(self.fc1(self.ln2(x)))
        with nvtx(P + "transformer.mlp.forward.linear_fc2"):
            x = x + self.fc2(h)
        return x


class GPT(nn.Module):
    def __init__(self, vocab, d, heads, layers, seq):
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(seq, d)
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.head = nn.Linear(d, vocab)

    def forward(self, idx):
        x = self.tok(idx) + self.pos(torch.arange(idx.shape[1], device=idx.device))
        for blk in self.blocks:
            x = blk(x)
        return self.head(x)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--microbatches", type=int, default=4)
    ap.add_argument("--profile-steps", default="")  # A:B, with --profile
    ap.add_argument("--profile", default="")  # torch.profiler's Chrome trace of those steps
    ap.add_argument("--times", default="")  # step times (s), one a line, after the warm-up steps
    ap.add_argument("--warmup", type=int, default=2)  # steps left out of --times (allocator, cuBLAS heuristics)
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=0)  # 0: d-model / 64
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--batch", type=int, default=8)  # sequences a micro-batch
    ap.add_argument("--vocab", type=int, default=1024)
    ap.add_argument("--bf16", action="store_true")  # forward and loss under bf16 autocast
    ap.add_argument("--device", default="cuda")
    a = ap.parse_args()
    global CUDA
    CUDA = a.device.startswith("cuda")
    heads = a.heads or max(1, a.d_model // 64)
    if a.d_model % heads or a.steps <= a.warmup and a.times:
        ap.error("--d-model must be a multiple of --heads, and --steps more than --warmup with --times")
    torch.manual_seed(0)
    dev = a.device
    model = GPT(a.vocab, a.d_model, heads, a.layers, a.seq).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    data = torch.randint(0, a.vocab, (a.microbatches, a.batch, a.seq + 1), device=dev)
    autocast = torch.autocast(dev.split(":")[0], dtype=torch.bfloat16, enabled=a.bf16)
    first, last = (int(v) for v in a.profile_steps.split(":")) if a.profile_steps else (-1, -1)
    prof = None
    times = []
    for step in range(a.steps):
        if step == first and a.profile:
            prof = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU,
                                                      torch.profiler.ProfilerActivity.CUDA])
            prof.__enter__()
        synchronize()
        t0 = time.perf_counter()
        push(f"ProfilerStep#{step}")
        # One stage: every micro-batch's forward, then its backward right after (the last stage of 1F1B).
        for mb in range(a.microbatches):
            x, y = data[mb, :, :-1], data[mb, :, 1:]
            with nvtx(P + "pipeline_parallel.schedules.forward_step"), autocast:
                loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten()) / a.microbatches
            with nvtx(P + "pipeline_parallel.schedules.backward_step"):
                loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        pop()
        synchronize()
        times.append(time.perf_counter() - t0)
        if step == last and prof is not None:
            prof.__exit__(None, None, None)
            prof.export_chrome_trace(a.profile)
            prof = None
    if a.times:
        kept = times[a.warmup:]
        with open(a.times, "w") as f:
            f.write("\n".join(str(t) for t in kept) + "\n")
        params = sum(p.numel() for p in model.parameters())
        print(f"d {a.d_model} layers {a.layers} heads {heads} seq {a.seq} batch {a.batch} vocab {a.vocab} "
              f"{'bf16' if a.bf16 else 'fp32'}: {params / 1e6:.1f} M parameters, median step "
              f"{sorted(kept)[len(kept) // 2] * 1e3:.2f} ms over {len(kept)} steps")


if __name__ == "__main__":
    main()
