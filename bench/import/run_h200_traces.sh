#!/usr/bin/env bash
# Writes the PyTorch profiler traces that samples/kineto/ keeps, on the GPU server: a tiny GPT pipeline
# (bench/import/make_traces.py) under torch.profiler, on one GPU (one process, no torch.distributed), and
# as two pipeline stages with NCCL (two processes, one GPU each; where only one GPU is lent, the two
# processes share it over gloo, whose traces have no NCCL kernels). Builds nothing; needs python3 with
# torch. When build-gpu/bin/moescope-cli is there, each set is imported once as a check.
#
#   bench/import/run_h200_traces.sh OUT        (or OUT=... bench/import/run_h200_traces.sh)
#
# Writes OUT/single/rank0.pt.trace.json.gz, OUT/pp2/rank{0,1}.pt.trace.json.gz, their logs, and the
# check's output (OUT/*.import.log, OUT/*.stats.json).
set -euo pipefail
out=${1:-${OUT:?usage: run_h200_traces.sh OUT}}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mkdir -p "$out/single" "$out/pp2"

gpus=$(python3 -c 'import torch; print(torch.cuda.device_count())')
echo "GPUs: $gpus; $(python3 -c 'import torch; print("torch", torch.__version__)')" | tee "$out/env.log"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader >> "$out/env.log" 2>&1 || true

python3 "$here/make_traces.py" --out "$out/single" 2>&1 | tee "$out/single.log"
backend=nccl
if [ "$gpus" -lt 2 ]; then backend=gloo; fi
python3 -m torch.distributed.run --standalone --nproc_per_node 2 "$here/make_traces.py" --out "$out/pp2" \
  --backend "$backend" 2>&1 | tee "$out/pp2.log"
echo "pp2 backend: $backend" >> "$out/env.log"
ls -l "$out/single" "$out/pp2" | tee -a "$out/env.log"

cli="$root/build-gpu/bin/moescope-cli"
if [ -x "$cli" ]; then
  "$cli" import "$out/single/rank0.pt.trace.json.gz" -o "$out/single.moescope" 2>&1 | tee "$out/single.import.log"
  "$cli" stats "$out/single.moescope" --json > "$out/single.stats.json"
  "$cli" import "$out/pp2/rank0.pt.trace.json.gz" "$out/pp2/rank1.pt.trace.json.gz" --pp 2 \
    -o "$out/pp2.moescope" 2>&1 | tee "$out/pp2.import.log"
  "$cli" stats "$out/pp2.moescope" --json > "$out/pp2.stats.json"
  rm -f "$out/single.moescope" "$out/pp2.moescope"
fi
