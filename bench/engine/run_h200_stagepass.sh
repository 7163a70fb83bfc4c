#!/usr/bin/env bash
# Checks the one stage pass of the CPU and CUDA backends on the GPU server, building nothing:
#   1. the CUDA engine's tests: every kernel against the CPU reference (the per-expert slicing kernels and
#      the sum kernel among them), the multi-part NCCL all-reduce, each layout's losses against the CPU
#      backend, and the same span sequence per rank as the CPU backend in fp32 and bf16;
#   2. the GPU tracer's tests (a PPMoE tp = 2 run whose all-reduce and expert spans hold their kernels);
#   3. with a baseline build, the CUDA engine's throughput (bench/engine/run_h200.sh) of this build and of
#      the baseline, alternated ROUNDS times so that drift hits both alike, and the median ratio per run.
#
# Usage, from the repository root: bench/engine/run_h200_stagepass.sh BIN_DIR OUT_DIR [BASELINE_BIN_DIR]
#   BIN_DIR and BASELINE_BIN_DIR hold moescope-cli, nccl_allreduce_bench and the test programs (e.g.
#   build-gpu/bin); ROUNDS (default 3) and STEPS (default 12) for the throughput.
set -uo pipefail
BIN=${1:?BIN_DIR}
OUTD=${2:?OUT_DIR}
BASE=${3:-}
ROUNDS=${ROUNDS:-3}
mkdir -p "$OUTD"
export NCCL_NVLS_ENABLE=${NCCL_NVLS_ENABLE:-0}
export LD_LIBRARY_PATH="$BIN/lib:${LD_LIBRARY_PATH:-}"
status=0

for t in moescope_engine_cuda_tests test_gpu_run test_cupti_collector; do
  if "$BIN/$t" --gtest_output="xml:$OUTD/$t.xml" > "$OUTD/$t.log" 2>&1; then
    # On the 2-GPU server nothing should be skipped: a skip there is a check that did not run.
    echo "$t: $(grep -E '^\[  PASSED  \]' "$OUTD/$t.log") $(grep -E '^\[  SKIPPED \] [0-9]+ test' "$OUTD/$t.log")"
  else
    echo "$t: FAILED, see $OUTD/$t.log"
    grep -E '^\[  FAILED  \]' "$OUTD/$t.log" | sort -u
    status=1
  fi
done

if [ -n "$BASE" ]; then
  for r in $(seq 1 "$ROUNDS"); do
    for side in base new; do
      dir=$BASE
      [ "$side" = new ] && dir=$BIN
      bench/engine/run_h200.sh "$dir" "$OUTD/$side-r$r" > "$OUTD/$side-r$r.md" 2>&1
    done
  done
  echo
  echo "| run | baseline tokens/s (median) | this build | ratio |"
  echo "|---|---:|---:|---:|"
  for run in dense-1gpu dense-tp2 ppmoe-tp2 dpmoe-dp2 ppmoe-pp2-1f1b; do
    med() { grep -h "^| $run |" "$OUTD"/"$1"-r*.md | awk -F'|' '{ print $4 + 0 }' | sort -g |
      awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
    b=$(med base)
    n=$(med new)
    awk -v r="$run" -v b="$b" -v n="$n" 'BEGIN { printf "| %s | %.0f | %.0f | %.3f |\n", r, b, n, (b > 0 ? n / b : 0) }'
  done
fi
exit $status
