#!/usr/bin/env bash
# Issue 18's checks and measurements on one H200, in one call, from a prebuilt build folder (nothing is
# built here): the CUDA kernel tests (the new kernels against their CPU references, cuDNN's attention
# among them) and the single-GPU stage tests (numerics), cuda_kernels_bench (every kernel, and each fused
# path beside what it replaces), PyTorch SDPA's flash and cuDNN attention at the same shapes, the PyTorch
# baseline of the benchmark model eager and compiled, and moescope-cli on the dense backbone and the
# 1.3B/2.7B presets. Every log and table goes under OUT; a short summary is printed last.
#
# Usage, from the repository root: bench/engine/run_h200_perf.sh OUT
#   BIN (default build-gpu/bin) holds moescope-cli, moescope_engine_cuda_tests and cuda_kernels_bench.
#   BUDGET (default 470) seconds for the whole script: each stage gets at most its own cap and what is
#   left; a stage that would start with less than 20 s left is skipped and says so.
#   STAGES (default all): a space-separated subset of
#     tests stage-tests kernels torch-attention torch-eager torch-compile dense presets
#
# Build folder (development machine, nvcc 13, sm_90):
#   cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DMOESCOPE_WERROR=ON -DMOESCOPE_GUI=OFF
#   cmake --build build-gpu --target moescope-cli moescope_engine_cuda_tests cuda_kernels_bench bench_engine
# (about 34 MB with build-gpu/samples, which the stage tests read).
set -uo pipefail
OUT=${1:?usage: bench/engine/run_h200_perf.sh OUT}
BIN=${BIN:-build-gpu/bin}
BUDGET=${BUDGET:-470}
STAGES=${STAGES:-tests stage-tests kernels torch-attention torch-eager torch-compile dense presets}
mkdir -p "$OUT"
START=$(date +%s)
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
# cuDNN compiles its attention kernels with NVRTC at run time: the toolkit's libraries on the loader path.
export LD_LIBRARY_PATH="/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
# cuDNN's own error messages, if any, into a log of their own.
export CUDNN_LOGERR_DBG=1 CUDNN_LOGDEST_DBG="$OUT/cudnn-errors.log"
SUMMARY="$OUT/summary.md"
: > "$SUMMARY"

note() { echo "$*" | tee -a "$OUT/run.log"; }
elapsed() { echo $(($(date +%s) - START)); }
wanted() { [[ " $STAGES " == *" $1 "* ]]; }
# stage NAME CAP CMD...: runs CMD with at most CAP seconds (less if the budget is short), logged to
# OUT/NAME.log; returns CMD's status (124: timed out, 125: skipped).
stage() {
  local name=$1 cap=$2
  shift 2
  local left=$((BUDGET - $(elapsed) - 10))
  local limit=$((cap < left ? cap : left))
  if ((limit < 20)); then
    note "[$(elapsed) s] $name: skipped, $left s of the budget left"
    return 125
  fi
  note "[$(elapsed) s] $name (at most $limit s): $*"
  local t0=$(date +%s)
  timeout --kill-after=5 "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  note "[$(elapsed) s] $name: exit $rc after $(($(date +%s) - t0)) s"
  return $rc
}

{
  echo "# issue 18 on $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1), $(date -u '+%Y-%m-%d %H:%M UTC')"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  python3 -c 'import torch; print("torch", torch.__version__, "cuDNN", torch.backends.cudnn.version())' 2>&1
  ls -l /usr/lib/x86_64-linux-gnu/libcudnn.so.9* 2>&1
  git log -1 --format='commit %h %s' 2>/dev/null
  ldd "$BIN/moescope-cli" | grep -E "not found" || echo "moescope-cli: every library found"
} > "$OUT/info.log" 2>&1
cat "$OUT/info.log"

# --- 1. the kernel tests: the new kernels against their CPU references; cuDNN first from the system ---
TEST_SUMMARY=()
gtest_counts() {  # passed / failed / skipped of a gtest log
  local log=$1
  printf "%s passed, %s failed, %s skipped" \
    "$(grep -c '^\[       OK \]' "$log")" "$(grep -c '^\[  FAILED  \] [A-Za-z].*(' "$log")" \
    "$(grep -c '^\[  SKIPPED \] [A-Za-z].*(' "$log")"
}
if wanted tests; then
  stage kernel-tests 100 "$BIN/moescope_engine_cuda_tests" --gtest_filter='-CudaStage.*:NcclCommunicator*'
  TEST_SUMMARY+=("kernel tests: $(gtest_counts "$OUT/kernel-tests.log")")
  # Where the system's cuDNN could not run the attention, try PyTorch's (its wheel ships one).
  if grep -q '^\[  FAILED  \] CudnnAttention\|no cuDNN 9' "$OUT/kernel-tests.log"; then
    TORCH_CUDNN=$(python3 -c 'import glob, os, nvidia.cudnn as c; print((glob.glob(os.path.join(list(c.__path__)[0], "lib", "libcudnn.so.9*")) or [""])[0])' 2>/dev/null)
    if [ -n "$TORCH_CUDNN" ]; then
      note "cuDNN attention failed with the system's libcudnn; again with $TORCH_CUDNN"
      if MOESCOPE_CUDNN_LIBRARY="$TORCH_CUDNN" stage cudnn-tests-torch-lib 60 "$BIN/moescope_engine_cuda_tests" \
          --gtest_filter='Cudnn*'; then
        export MOESCOPE_CUDNN_LIBRARY="$TORCH_CUDNN"
      fi
      TEST_SUMMARY+=("cuDNN tests with PyTorch's libcudnn: $(gtest_counts "$OUT/cudnn-tests-torch-lib.log")")
    fi
  fi
fi
if wanted stage-tests; then
  # The stage on one GPU against the CPU backend (fp32) and bf16 against fp32 over 200 steps: the
  # changed linear layer (bias gradients from the BGRADB epilogue) runs in both.
  stage stage-tests 90 "$BIN/moescope_engine_cuda_tests" --gtest_filter='CudaStage.*:CudaBackend.*'
  TEST_SUMMARY+=("stage tests: $(gtest_counts "$OUT/stage-tests.log")")
fi

# --- 2. kernels: every kernel, and the fused paths beside what they replace ---
if wanted kernels; then
  stage kernels 100 "$BIN/cuda_kernels_bench" --iters 20
  grep '^|' "$OUT/kernels.log" > "$OUT/kernels.md"
fi

# --- 3. PyTorch: attention backends, and the model eager and compiled ---
if wanted torch-attention; then
  stage torch-attention 60 python3 bench/engine/attention_torch.py --iters 30 --json "$OUT/torch-attention.json"
fi
: > "$OUT/torch-baseline.jsonl"
if wanted torch-eager; then
  stage torch-eager 70 python3 bench/engine/torch_baseline.py --config samples/bench-h200.toml --mode eager \
    --steps 10 --warmup 3 --json "$OUT/torch-baseline.jsonl"
fi
if wanted torch-compile; then
  stage torch-compile 200 python3 bench/engine/torch_baseline.py --config samples/bench-h200.toml --mode compile \
    --steps 10 --warmup 3 --json "$OUT/torch-baseline.jsonl"
fi

# --- 4. moescope-cli: the dense backbone and the presets on one GPU ---
# tokens/s: median of steps 2 and later; MFU as run_h200.sh; peak memory: the largest memory.used
# nvidia-smi saw during the run (the device's count: context and libraries included).
MOESCOPE_ROWS=()
train_run() {
  local name=$1 cap=$2 cfg=$3
  shift 3
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 500 > "$OUT/$name.mem" 2>/dev/null &
  local smi=$!
  stage "$name" "$cap" "$BIN/moescope-cli" train --config "$cfg" --backend cuda --metrics "$OUT/$name.jsonl" "$@"
  local rc=$?
  kill "$smi" 2>/dev/null
  wait "$smi" 2>/dev/null
  if ((rc != 0)); then
    MOESCOPE_ROWS+=("| moescope $name | exit $rc: $(tail -1 "$OUT/$name.log" | cut -c1-120) | | | |")
    return
  fi
  local tps fpt peak
  tps=$(grep -o '"tokens_per_s": [0-9.e+]*' "$OUT/$name.jsonl" | awk -F': ' 'NR > 2 { print $2 }' | sort -g |
    awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
  fpt=$(python3 - "$cfg" "$@" <<'EOF'
import sys, tomllib
m = tomllib.load(open(sys.argv[1], "rb"))["model"]
for i, a in enumerate(sys.argv):
    if a == "--set" and sys.argv[i + 1].startswith("model."):
        k, v = sys.argv[i + 1][6:].split("=")
        m[k] = type(m[k])(v)
C, F, V, L, T, E = m["d_model"], m["d_ff"], m["vocab_size"], m["n_layers"], m["seq_len"], m["n_experts"]
attn, ffn, ln = 4 * C * C + 4 * C, 2 * C * F + F + C, 4 * C
if E == 0:
    active = L * (attn + ffn + ln) + V * C
else:
    every, K = m["moe_every"], m["top_k"]
    moe = L // every
    active = (L - moe) * (attn + ffn + ln) + moe * (attn + ln + C * E + K * ffn) + V * C
print(6 * active + 12 * L * T * C)
EOF
)
  peak=$(sort -n "$OUT/$name.mem" | tail -1)
  MOESCOPE_ROWS+=("$(awk -v n="$name" -v t="$tps" -v f="$fpt" -v p="$peak" 'BEGIN {
    printf "| moescope %s | %.0f | %.1f%% | %.1f GB (device) | %.1f ms |", n, t, 100 * t * f / 989e12, p * 1048576 / 1e9, t > 0 ? 16384 / t * 1000 : 0 }')")
}
if wanted dense; then
  train_run dense-1gpu 60 samples/bench-h200.toml --steps 14 --set model.n_experts=0 --set parallel.tp=1
fi
if wanted presets; then
  train_run dense-1.3b 70 samples/dense-1.3b-h200.toml --steps 8
  train_run dense-2.7b 80 samples/dense-2.7b-h200.toml --steps 6
fi

# --- summary ---
{
  echo "## Tests"
  for t in "${TEST_SUMMARY[@]}"; do echo "- $t"; done
  grep -h '^\[  FAILED  \] [A-Za-z].*(' "$OUT"/*tests*.log 2>/dev/null | sed 's/^/  /' | head -20
  grep -h 'forward engine\|epilogue\|separate kernels\|grouped GEMM' "$OUT/kernel-tests.log" 2>/dev/null | sort -u | head -12 | sed 's/^/  /'
  echo
  echo "## Attention, causal bf16, TFLOP/s forward / backward (causal work)"
  echo "| shape | moescope fused | moescope cuDNN | torch flash | torch cuDNN | ours cuDNN / torch cuDNN |"
  echo "|---|---:|---:|---:|---:|---:|"
  python3 - "$OUT" <<'EOF'
import json, os, re, sys
out = sys.argv[1]
ours = {}
try:
    for line in open(os.path.join(out, "kernels.md")):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0] in ("flashAttentionForward", "flashAttentionBackward", "cudnnAttentionForward", "cudnnAttentionBackward"):
            ours[(cells[0], cells[1])] = float(cells[3].split()[0])
except OSError:
    pass
torch = {}
try:
    for r in json.load(open(os.path.join(out, "torch-attention.json")))["rows"]:
        torch[(r["backend"], f"B16 T{r['T']} H16 D{r['D']}")] = (r["forward_tflops"], r["backward_tflops"])
except (OSError, ValueError, KeyError):
    pass
def pair(f, b):
    return f"{f:.0f} / {b:.0f}" if f and b else "-"
for T in (1024, 2048):
    for D in (128, 64):
        s = f"B16 T{T} H16 D{D}"
        fl = (ours.get(("flashAttentionForward", s)), ours.get(("flashAttentionBackward", s)))
        cu = (ours.get(("cudnnAttentionForward", s)), ours.get(("cudnnAttentionBackward", s)))
        tf = torch.get(("flash", s), (None, None))
        tc = torch.get(("cudnn", s), (None, None))
        ratio = f"{cu[0] / tc[0]:.2f} / {cu[1] / tc[1]:.2f}" if all(cu) and all(tc) else "-"
        print(f"| {s} | {pair(*fl)} | {pair(*cu)} | {pair(*tf)} | {pair(*tc)} | {ratio} |")
EOF
  echo
  echo "## Fused paths beside what they replace (ms per call, bf16)"
  grep -E '^\| (fc |qkv dW|residual \+ LayerNorm|AdamW,|experts )' "$OUT/kernels.md" 2>/dev/null | awk -F'|' '{ printf "|%s|%s|%s|\n", $2, $3, $4 }'
  echo
  echo "## Training, samples/bench-h200.toml dense on 1 GPU unless named (16384 tokens a step)"
  echo "| run | tokens/s | MFU | peak memory | step |"
  echo "|---|---:|---:|---:|---:|"
  python3 - "$OUT/torch-baseline.jsonl" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    print(f"| PyTorch {r['torch']} {r['mode']} | {r['tokens_per_s']:.0f} | {100 * r['mfu']:.1f}% | "
          f"{r['peak_allocated_gb']:.1f} GB allocated, {r['peak_reserved_gb']:.1f} reserved | {r['step_ms']:.1f} ms |")
EOF
  for r in "${MOESCOPE_ROWS[@]}"; do echo "$r"; done
  echo
  echo "total $(elapsed) s; logs in $OUT"
} > "$SUMMARY" 2>&1
cat "$SUMMARY"
