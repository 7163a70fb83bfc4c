#!/usr/bin/env python3
"""PyTorch profiler (Kineto) traces of a tiny GPT pipeline, for moescope's import tests.

One process per rank (started by torchrun for two ranks), the model cut into as many pipeline stages as
there are ranks, one training step = the 1F1B schedule over the micro-batches, as Megatron-Core's
forward_backward_pipelining_without_interleaving runs it (warm-up forwards, then one forward and one
backward in turn with the combined send_forward_recv_backward / send_backward_recv_forward transfers,
then the cool-down backwards), an all-reduce of the loss over all ranks, and AdamW.

torch.profiler records a few steps with record_shapes and writes one trace per rank:
OUT/rank<R>.pt.trace.json.gz. Its record_function ranges are named as Megatron-Core names its NVTX
ranges (megatron/core: "<module>.<function>[.<suffix>]"), so that moescope's shipped Megatron rules
give them their categories, and the forward and backward steps carry no micro-batch, as in Megatron:
moescope rebuilds it from the schedule.

    python3 make_traces.py --out OUT                                   # one process, one GPU
    python3 -m torch.distributed.run --standalone --nproc_per_node 2 make_traces.py --out OUT
"""
import argparse
import gzip
import os
import shutil

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile, record_function, schedule

ATTENTION = "megatron.core.transformer.attention.forward."
MLP = "megatron.core.transformer.mlp.forward."
SCHEDULES = "megatron.core.pipeline_parallel.schedules."
P2P = "megatron.core.pipeline_parallel.p2p_communication."


def causal_attention(q, k, v):
    if hasattr(F, "scaled_dot_product_attention"):  # PyTorch 2: flash or cuDNN kernels
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    t = q.shape[-2]
    scores = (q @ k.transpose(-2, -1)) / q.shape[-1] ** 0.5
    mask = torch.ones(t, t, dtype=torch.bool, device=q.device).triu(1)
    return scores.masked_fill(mask, float("-inf")).softmax(-1) @ v


class Attention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)

    def forward(self, x):
        b, t, d = x.shape
        with record_function(ATTENTION + "qkv"):
            q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        with record_function(ATTENTION + "core_attention"):
            o = causal_attention(q, k, v)
        with record_function(ATTENTION + "linear_proj"):
            return self.proj(o.transpose(1, 2).reshape(b, t, d))


class Mlp(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc1 = nn.Linear(d, 4 * d)
        self.fc2 = nn.Linear(4 * d, d)

    def forward(self, x):
        with record_function(MLP + "linear_fc1"):
            h = self.fc1(x)
        with record_function(MLP + "activation"):
            h = F.gelu(h, approximate="tanh")
        with record_function(MLP + "linear_fc2"):
            return self.fc2(h)


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.ln1 = nn.LayerNorm(d)
        self.attn = Attention(d, heads)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = Mlp(d)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class Stage(nn.Module):
    """Layers [first, first + count) of the model; the embedding on the first stage, the head on the last."""

    def __init__(self, a, first_stage, last_stage):
        super().__init__()
        self.first, self.last = first_stage, last_stage
        if first_stage:
            self.wte = nn.Embedding(a.vocab, a.d_model)
            self.wpe = nn.Embedding(a.seq, a.d_model)
        self.blocks = nn.ModuleList(Block(a.d_model, a.heads) for _ in range(a.layers))
        if last_stage:
            self.ln_f = nn.LayerNorm(a.d_model)
            self.head = nn.Linear(a.d_model, a.vocab, bias=False)

    def forward(self, x, targets):
        if self.first:
            with record_function("megatron.core.models.common.embeddings.language_model_embedding.forward"):
                x = self.wte(x) + self.wpe(torch.arange(x.shape[1], device=x.device))
        for block in self.blocks:
            x = block(x)
        if not self.last:
            return x
        with record_function("megatron.core.models.gpt.gpt_model.compute_language_model_loss"):
            logits = self.head(self.ln_f(x))
            return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


class Pipe:
    """Transfers between neighbouring stages, named and paired as Megatron's P2PCommunicator pairs them."""

    def __init__(self, rank, world, shape, device, dtype):
        self.rank, self.world, self.shape, self.device, self.dtype = rank, world, shape, device, dtype
        # gloo sends host tensors; NCCL sends device tensors.
        self.wire = device if dist.is_initialized() and dist.get_backend() == "nccl" else torch.device("cpu")

    def _exchange(self, name, send=None, send_to=None, recv_from=None):
        with record_function(P2P + name):
            ops, received = [], None
            if send is not None and send_to is not None:
                ops.append(dist.P2POp(dist.isend, send.detach().to(self.wire).contiguous(), send_to))
            if recv_from is not None:
                received = torch.empty(self.shape, device=self.wire, dtype=self.dtype)
                ops.append(dist.P2POp(dist.irecv, received, recv_from))
            if ops:
                for request in dist.batch_isend_irecv(ops):
                    request.wait()
            if received is None:
                return None
            return received.to(self.device).requires_grad_()

    def prev(self):
        return self.rank - 1 if self.rank > 0 else None

    def next(self):
        return self.rank + 1 if self.rank + 1 < self.world else None

    def recv_forward(self):
        return self._exchange("recv_forward", recv_from=self.prev()) if self.prev() is not None else None

    def send_forward(self, out):
        if self.next() is not None:
            self._exchange("send_forward", send=out, send_to=self.next())

    def recv_backward(self):
        return self._exchange("recv_backward", recv_from=self.next()) if self.next() is not None else None

    def send_backward(self, grad):
        if self.prev() is not None:
            self._exchange("send_backward", send=grad, send_to=self.prev())

    def send_forward_recv_backward(self, out):
        if self.next() is None:
            return None
        return self._exchange("send_forward_recv_backward", send=out, send_to=self.next(), recv_from=self.next())

    def send_backward_recv_forward(self, grad):
        if self.prev() is None:
            return None
        return self._exchange("send_backward_recv_forward", send=grad, send_to=self.prev(), recv_from=self.prev())


def train_step(a, stage, opt, pipe, rank, world, device, batches):
    """One step of 1F1B over the micro-batches (Megatron's forward_backward_pipelining_without_interleaving)."""
    m = len(batches)
    warmup = min(world - rank - 1, m)
    inputs, outputs, losses = [], [], []

    def forward(k, x):
        with record_function(SCHEDULES + "forward_step"):
            tokens, targets = batches[k]
            out = stage(tokens if stage.first else x, targets)
            if stage.last:
                losses.append(out.detach())
                out = out / m
        inputs.append(x)
        outputs.append(out)
        return out

    def backward(grad):
        with record_function(SCHEDULES + "backward_step"):
            x, out = inputs.pop(0), outputs.pop(0)
            torch.autograd.backward(out, grad_tensors=None if stage.last else grad)
            return x.grad if x is not None else None

    k = 0
    for _ in range(warmup):
        out = forward(k, pipe.recv_forward())
        pipe.send_forward(out)
        k += 1
    x = pipe.recv_forward() if m - warmup > 0 else None
    for i in range(m - warmup):
        out = forward(k, x)
        k += 1
        grad = pipe.send_forward_recv_backward(out)
        input_grad = backward(grad)
        if i == m - warmup - 1:
            pipe.send_backward(input_grad)
        else:
            x = pipe.send_backward_recv_forward(input_grad)
    for _ in range(warmup):
        input_grad = backward(pipe.recv_backward())
        pipe.send_backward(input_grad)

    # The step's loss on every rank, as Megatron averages it for logging.
    loss = torch.stack(losses).mean() if losses else torch.zeros((), device=device)
    if world > 1:
        total = loss.detach().float().to(pipe.wire).reshape(1)
        dist.all_reduce(total)
        loss = total.to(device)[0]
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss.item()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="folder for rank<R>.pt.trace.json.gz")
    p.add_argument("--steps", type=int, default=3, help="profiled steps (after one wait and one warm-up step)")
    p.add_argument("--microbatches", type=int, default=4)
    p.add_argument("--layers", type=int, default=2, help="transformer layers per stage")
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--batch", type=int, default=4, help="sequences per micro-batch")
    p.add_argument("--vocab", type=int, default=512)
    p.add_argument("--backend", default="auto", help="nccl, gloo, or auto: nccl when every rank has a GPU of its own")
    a = p.parse_args()

    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    cuda = torch.cuda.is_available()
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", rank))
        device = torch.device("cuda", local % torch.cuda.device_count())
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world > 1:
        backend = a.backend
        if backend == "auto":
            backend = "nccl" if cuda and torch.cuda.device_count() >= world else "gloo"
        dist.init_process_group(backend=backend, rank=rank, world_size=world)

    torch.manual_seed(1234 + rank)
    dtype = torch.bfloat16 if cuda else torch.float32
    stage = Stage(a, rank == 0, rank == world - 1).to(device=device, dtype=dtype)
    opt = torch.optim.AdamW(stage.parameters(), lr=1e-4)
    pipe = Pipe(rank, world, (a.batch, a.seq, a.d_model), device, dtype)
    gen = torch.Generator().manual_seed(99)  # every rank draws the same tokens
    os.makedirs(a.out, exist_ok=True)
    plain = os.path.join(a.out, f"rank{rank}.pt.trace.json")

    def write(prof):
        prof.export_chrome_trace(plain)
        with open(plain, "rb") as src, gzip.open(plain + ".gz", "wb", compresslevel=9) as dst:
            shutil.copyfileobj(src, dst)
        os.remove(plain)

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    prof = profile(activities=activities, schedule=schedule(wait=1, warmup=1, active=a.steps), record_shapes=True,
                   on_trace_ready=write)
    with prof:
        for step in range(2 + a.steps):
            batches = []
            for _ in range(a.microbatches):
                t = torch.randint(0, a.vocab, (a.batch, a.seq + 1), generator=gen)
                batches.append((t[:, :-1].to(device), t[:, 1:].to(device)))
            loss = train_step(a, stage, opt, pipe, rank, world, device, batches)
            if cuda:
                torch.cuda.synchronize()
            if rank == world - 1:
                print(f"step {step} loss {loss:.4f}", flush=True)
            prof.step()
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    print(f"rank {rank}: wrote {plain}.gz ({os.path.getsize(plain + '.gz')} bytes)", flush=True)


if __name__ == "__main__":
    main()
