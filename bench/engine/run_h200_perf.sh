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
source "$(dirname "$0")/h200_lib.sh"
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
# cuDNN compiles its attention kernels with NVRTC at run time: the toolkit's libraries on the loader path.
export LD_LIBRARY_PATH="/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
# cuDNN's own error messages, if any, into a log of their own.
export CUDNN_LOGERR_DBG=1 CUDNN_LOGDEST_DBG="$OUT/cudnn-errors.log"
SUMMARY="$OUT/summary.md"
: > "$SUMMARY"

machine_info

# --- 1. the kernel tests: the new kernels against their CPU references; cuDNN first from the system ---
TEST_SUMMARY=()
if wanted tests; then
  stage kernel-tests 100 "$BIN/moescope_engine_cuda_tests" --gtest_filter='-CudaStage.*:NcclCommunicator*'
  TEST_SUMMARY+=("kernel tests: $(gtest_counts "$OUT/kernel-tests.log")")
  cudnn_from_torch_if_failed "$OUT/kernel-tests.log"
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
# tokens/s, MFU and peak memory as run_train (h200_lib.sh) gives them.
MOESCOPE_ROWS=()
train_run() {
  run_train "$@"
  local name=$1
  if ((RUN_RC != 0)); then
    MOESCOPE_ROWS+=("| moescope $name | exit $RUN_RC: $(tail -1 "$OUT/$name.log" | cut -c1-120) | | | |")
    return
  fi
  MOESCOPE_ROWS+=("$(awk -v n="$name" -v t="$RUN_TPS" -v f="$RUN_FPT" -v p="$RUN_PEAK_MIB" 'BEGIN {
    printf "| moescope %s | %.0f | %.1f%% | %.1f GB (device) | %.1f ms |", n, t, 100 * t * f / 989e12, p * 1048576 / 1e9, (t > 0 ? 16384 / t * 1000 : 0) }')")
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
