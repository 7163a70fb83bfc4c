#!/usr/bin/env bash
# Issue 18's fused paths in the CUDA stage, checked and measured on one H200 in one call, from a prebuilt
# build folder (nothing is built here), in this order, each step logged under OUT and none fatal to the
# rest (a step that fails, times out or finds the budget spent is said so in the summary):
#   1. tests: moescope_engine_cuda_tests (every kernel against its CPU reference; the stage: fp32 equal to
#      the CPU backend with the fused paths on, all off and with grouped experts; bf16 within 2% of fp32
#      with cuBLASLt's, the fused kernels' and cuDNN's attention and with grouped experts; ZB-H1 and
#      interleaved against GPipe; the run's peak device memory within the estimate), then test_gpu_run and
#      test_cupti_collector (the GPU tracer; the 2-GPU tests skip on one GPU);
#   2. kernels: cuda_kernels_bench, bf16 (each fused path beside what it replaces; an epilogue cuBLASLt
#      refuses is printed with its reason);
#   3. baseline: samples/bench-h200.toml's dense backbone on 1 GPU, moescope with every fused path on (the
#      default) and PyTorch on the same model and batch (bench/engine/torch_baseline.py), eager and
#      torch.compile;
#   4. A/B: the same dense run with all the fused paths off, and each off alone (MOESCOPE_CUDA_*,
#      engine/cuda_kernel_options.h);
#   5. ppmoe: the same model with its 16 experts on 1 GPU, experts a product each and grouped.
# 3-5 are alternated ROUNDS times, so that drift hits every variant alike; the table gives each variant's
# median over the rounds and its ratio to the all-on run of the same model. The summary (OUT/summary.md)
# is printed last.
#
# Usage, from the repository root: bench/engine/run_h200_fused.sh OUT
#   BIN (default build-gpu/bin), BUDGET (default 420 s for the whole script; a step that would start with
#   less than 20 s left is skipped and says so), ROUNDS (default 1), STEPS (default 10),
#   STAGES (default "tests kernels baseline dense ppmoe"), DENSE_VARIANTS (instead of the dense A/B list:
#   NAME:VAR=VALUE[,VAR=VALUE] entries, space-separated, e.g. "dgelu:MOESCOPE_CUDA_DGELU_EPILOGUE=dgelu").
#
# Build folder (development machine, nvcc 13, sm_90):
#   cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DMOESCOPE_WERROR=ON -DMOESCOPE_GUI=OFF
#   cmake --build build-gpu --target moescope-cli moescope_engine_cuda_tests cuda_kernels_bench bench_engine \
#     test_gpu_run test_cupti_collector
set -uo pipefail
OUT=${1:?usage: bench/engine/run_h200_fused.sh OUT}
BIN=${BIN:-build-gpu/bin}
BUDGET=${BUDGET:-420}
ROUNDS=${ROUNDS:-1}
STEPS=${STEPS:-10}
STAGES=${STAGES:-tests kernels baseline dense ppmoe}
mkdir -p "$OUT"
source "$(dirname "$0")/h200_lib.sh"
export NCCL_NVLS_ENABLE=0
# cuDNN compiles its attention kernels with NVRTC at run time: the toolkit's libraries on the loader path.
export LD_LIBRARY_PATH="/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export CUDNN_LOGERR_DBG=1 CUDNN_LOGDEST_DBG="$OUT/cudnn-errors.log"
machine_info

# --- 1. tests ---
TEST_SUMMARY=()
if wanted tests; then
  stage cuda-tests 170 "$BIN/moescope_engine_cuda_tests"
  TEST_SUMMARY+=("moescope_engine_cuda_tests: $(gtest_counts "$OUT/cuda-tests.log")")
  cudnn_from_torch_if_failed "$OUT/cuda-tests.log"
  stage test_gpu_run 40 "$BIN/test_gpu_run"
  TEST_SUMMARY+=("test_gpu_run: $(gtest_counts "$OUT/test_gpu_run.log")")
  each_test_alone test_cupti_collector 60 "$BIN/test_cupti_collector"
  TEST_SUMMARY+=("test_cupti_collector (each test alone): $(gtest_counts "$OUT/test_cupti_collector.log")")
fi

# --- 2. kernels ---
if wanted kernels; then
  stage kernels 60 "$BIN/cuda_kernels_bench" --iters 10
  grep '^|' "$OUT/kernels.log" > "$OUT/kernels.md" 2>/dev/null
fi

# --- 2 and 3. A/B: each variant NAME=VARIABLES, alternated over the rounds ---
CFG=samples/bench-h200.toml
DENSE=(--steps "$STEPS" --set model.n_experts=0 --set parallel.tp=1)
PPMOE=(--steps "$STEPS" --set parallel.tp=1)
ALL_OFF="MOESCOPE_CUDA_ATTENTION=flash MOESCOPE_CUDA_GELU_EPILOGUE=0 MOESCOPE_CUDA_DGELU_EPILOGUE=0 MOESCOPE_CUDA_BIAS_EPILOGUE=0 MOESCOPE_CUDA_RESIDUAL_NORM=0 MOESCOPE_CUDA_ADAMW=runs"
VARIANTS=()
if wanted baseline || wanted dense; then VARIANTS+=("dense:all-on:"); fi
if [ -n "${DENSE_VARIANTS:-}" ]; then
  for v in $DENSE_VARIANTS; do VARIANTS+=("dense:${v//,/ }"); done  # commas: several variables
elif wanted dense; then
  VARIANTS+=("dense:all-off:$ALL_OFF"
    "dense:attention-flash:MOESCOPE_CUDA_ATTENTION=flash"
    "dense:gelu-epilogue-off:MOESCOPE_CUDA_GELU_EPILOGUE=0"
    "dense:dgelu-kernel:MOESCOPE_CUDA_DGELU_EPILOGUE=0"
    "dense:dgelu-bgrad:MOESCOPE_CUDA_DGELU_EPILOGUE=1"
    "dense:bias-bgradb:MOESCOPE_CUDA_BIAS_EPILOGUE=1"
    "dense:gelu-recompute:MOESCOPE_CUDA_GELU_OUTPUT=recompute"
    "dense:residual-norm-off:MOESCOPE_CUDA_RESIDUAL_NORM=0"
    "dense:adamw-runs:MOESCOPE_CUDA_ADAMW=runs")
fi
if wanted ppmoe; then
  VARIANTS+=("ppmoe:all-on:" "ppmoe:experts-grouped:MOESCOPE_CUDA_EXPERTS=grouped" "ppmoe:all-off:$ALL_OFF")
fi
: > "$OUT/runs.txt"
: > "$OUT/torch-baseline.jsonl"
for r in $(seq 1 "$ROUNDS"); do
  for v in "${VARIANTS[@]}"; do
    IFS=: read -r model name vars <<< "$v"
    read -r -a RUN_ENV <<< "$vars"
    if [ "$model" = dense ]; then
      run_train "$model-$name-r$r" 60 "$CFG" "${DENSE[@]}"
    else
      run_train "$model-$name-r$r" 90 "$CFG" "${PPMOE[@]}"
    fi
    echo "$model $name $r $RUN_RC $RUN_TPS $RUN_FPT $RUN_PEAK_MIB $RUN_ENGINE_PEAK_MIB" >> "$OUT/runs.txt"
    # PyTorch on the same model right after moescope's all-on run, in the same round.
    if [ "$model:$name" = dense:all-on ] && wanted baseline; then
      stage "torch-eager-r$r" 45 python3 bench/engine/torch_baseline.py --config "$CFG" --mode eager \
        --steps "$STEPS" --warmup 3 --json "$OUT/torch-baseline.jsonl"
      stage "torch-compile-r$r" 120 python3 bench/engine/torch_baseline.py --config "$CFG" --mode compile \
        --steps "$STEPS" --warmup 3 --json "$OUT/torch-baseline.jsonl"
    fi
  done
done

# --- summary ---
{
  echo "## Tests"
  for t in "${TEST_SUMMARY[@]}"; do echo "- $t"; done
  grep -h '^\[  FAILED  \] [A-Za-z].*(' "$OUT"/*test*.log 2>/dev/null | sort -u | sed 's/^/  /' | head -20
  grep -h 'bf16 vs fp32\|: peak .* MiB, estimate' "$OUT/cuda-tests.log" 2>/dev/null | sed 's/^/  /' | head -16
  grep -h 'cuBLASLt refused' "$OUT"/cuda-tests.log "$OUT"/kernels.log 2>/dev/null | sort -u | sed 's/^ */  /' | head -8
  grep -h 'skipped: ' "$OUT/kernels.log" 2>/dev/null | sed 's/^/  /' | head -8
  echo
  echo "## samples/bench-h200.toml on 1 GPU, bf16, $STEPS steps ($ROUNDS rounds alternated; medians)"
  echo "| model | variant | tokens/s | vs all on | MFU | step | peak (device) | peak (engine) | kernels |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---|"
  for v in "${VARIANTS[@]}"; do
    IFS=: read -r model name vars <<< "$v"
    tps=$(awk -v m="$model" -v n="$name" '$1 == m && $2 == n && $4 == 0 { print $5 }' "$OUT/runs.txt" | median)
    base=$(awk -v m="$model" '$1 == m && $2 == "all-on" && $4 == 0 { print $5 }' "$OUT/runs.txt" | median)
    fpt=$(awk -v m="$model" -v n="$name" '$1 == m && $2 == n { print $6; exit }' "$OUT/runs.txt")
    peak=$(awk -v m="$model" -v n="$name" '$1 == m && $2 == n { print $7 }' "$OUT/runs.txt" | sort -g | tail -1)
    engine=$(awk -v m="$model" -v n="$name" '$1 == m && $2 == n { print $8 }' "$OUT/runs.txt" | sort -g | tail -1)
    fails=$(awk -v m="$model" -v n="$name" '$1 == m && $2 == n && $4 != 0' "$OUT/runs.txt" | wc -l)
    kernels=$(grep -h -o 'CUDA kernels: .*' "$OUT/$model-$name-r1.log" 2>/dev/null | head -1 |
      sed 's/CUDA kernels: //; s/MOESCOPE_CUDA_//g')
    [ "$fails" -gt 0 ] && kernels="$fails run(s) failed: $(tail -1 "$OUT/$model-$name-r1.log" | cut -c1-100); $kernels"
    awk -v m="$model" -v n="$name" -v t="$tps" -v b="$base" -v f="${fpt:-0}" -v p="${peak:-0}" -v e="${engine:-0}" \
      -v k="$kernels" 'BEGIN {
      printf "| %s | %s | %.0f | %s | %.1f%% | %.1f ms | %.1f GB | %.1f GB | %s |\n", m, n, t, (b > 0 ? sprintf("%.3f", t / b) : "-"),
        100 * t * f / 989e12, (t > 0 ? 16384 / t * 1000 : 0), p * 1048576 / 1e9, e * 1048576 / 1e9, k }'
  done
  echo
  echo "MFU: tokens/s x model FLOPs per token / 989 TFLOP/s; peak (device): nvidia-smi's memory.used (context and libraries included); peak (engine): the largest peak_memory_bytes of the run's metrics file (the engine's own allocations, comparable with PyTorch's peak allocated)."
  echo
  echo "## PyTorch on the same dense model and batch (bench/engine/torch_baseline.py; medians over the rounds)"
  echo "| PyTorch | tokens/s | MFU | peak allocated | moescope all on / PyTorch |"
  echo "|---|---:|---:|---:|---:|"
  ours=$(awk '$1 == "dense" && $2 == "all-on" && $4 == 0 { print $5 }' "$OUT/runs.txt" | median)
  python3 - "$OUT/torch-baseline.jsonl" "$ours" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    try:
        r = json.loads(line)
        rows.setdefault(r["mode"], []).append(r)
    except (ValueError, KeyError):
        pass
ours = float(sys.argv[2])
for mode in ("eager", "compile"):
    rs = rows.get(mode)
    if not rs:
        print(f"| {mode} | did not run (see torch-{mode}-r*.log) | | | |")
        continue
    tps = statistics.median(r["tokens_per_s"] for r in rs)
    mfu = statistics.median(r["mfu"] for r in rs)
    peak = max(r["peak_allocated_gb"] for r in rs)
    ratio = f"{ours / tps:.3f}" if ours > 0 and tps > 0 else "-"
    print(f"| {rs[0]['torch']} {mode} | {tps:,.0f} | {100 * mfu:.1f}% | {peak:.1f} GB | {ratio} |")
PY
  echo
  echo "## Steps"
  cat "$OUT/run.log"
  echo "total $(elapsed) s; logs in $OUT"
} > "$OUT/summary.md" 2>&1
cat "$OUT/summary.md"
