#!/usr/bin/env bash
# The pipeline schedules on the GPU server, building nothing (docs/SCHEDULES.md):
#   1. the CUDA stage tests that compare each schedule with the CPU backend (losses, updates, and the
#      same span sequence per rank: interleaved and ZB-H1 on 2 GPUs; with tp 2, dp 2 and pp 4 on 4);
#   2. the sample model (samples/schedules-pp4.toml, pp 4) under all four schedules on 4 GPUs, its
#      stats and a four-way compare, where the GPUs make the bubbles measurable.
#
# Usage, from the repository root: bench/engine/run_h200_schedules.sh BIN_DIR OUT_DIR
#   BIN_DIR holds moescope-cli and moescope_engine_cuda_tests (e.g. build-gpu/bin).
set -uo pipefail
BIN=${1:?BIN_DIR}
OUTD=${2:?OUT_DIR}
mkdir -p "$OUTD"
export NCCL_NVLS_ENABLE=${NCCL_NVLS_ENABLE:-0}
export LD_LIBRARY_PATH="$BIN/lib:${LD_LIBRARY_PATH:-}"
status=0

filter='CudaStage.*ZbH1*:CudaStage.RecordsTheCpuBackendsSpansOnTwoGpus'
if "$BIN/moescope_engine_cuda_tests" --gtest_filter="$filter" --gtest_output="xml:$OUTD/schedules_tests.xml" \
    > "$OUTD/schedules_tests.log" 2>&1; then
  echo "schedule tests: $(grep -E '^\[  PASSED  \]' "$OUTD/schedules_tests.log")" \
       "$(grep -E '^\[  SKIPPED \] [0-9]+ test' "$OUTD/schedules_tests.log")"
else
  echo "schedule tests: FAILED, see $OUTD/schedules_tests.log"
  grep -E '^\[  FAILED  \]' "$OUTD/schedules_tests.log" | sort -u
  status=1
fi

gpus=$(nvidia-smi --list-gpus 2>/dev/null | wc -l)
if [ "$gpus" -ge 4 ]; then
  runs=()
  for s in gpipe 1f1b interleaved zb-h1; do
    extra=()
    [ "$s" = interleaved ] && extra=(--set parallel.virtual_stages=2)
    if "$BIN/moescope-cli" train --config samples/schedules-pp4.toml --backend cuda --steps 12 \
        --set parallel.schedule=$s "${extra[@]}" --out "$OUTD/$s.moescope" > "$OUTD/$s.log" 2>&1; then
      "$BIN/moescope-cli" stats "$OUTD/$s.moescope" > "$OUTD/$s.stats.txt"
      runs+=("$OUTD/$s.moescope")
    else
      echo "train $s: FAILED, see $OUTD/$s.log"
      status=1
    fi
  done
  [ ${#runs[@]} -gt 1 ] && "$BIN/moescope-cli" compare "${runs[@]}" | tee "$OUTD/compare.txt"
else
  echo "sample runs: skipped, they need 4 GPUs (found $gpus)"
fi
exit $status
