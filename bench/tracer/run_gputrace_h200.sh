#!/usr/bin/env bash
# The GPU tracer's overhead on the 2 x H200 server (docs/bench-gputrace.md): the median step time of
# samples/bench-h200.toml (PPMoE, tp = 2) in each mode, the modes alternated ROUNDS times so that drift
# hits each alike; step time is the median over the steps after the first two of every run of a mode.
#
#   off            tracing off (--set trace.enabled=false)
#   host           host spans only (MOESCOPE_GPU_TRACE=0)
#   full           host spans, NVTX ranges, CUPTI kernels/memcpy/memset tied to their spans through
#                  callbacks on the launching calls (the defaults: MOESCOPE_GPU_CORRELATION=callbacks,
#                  MOESCOPE_GPU_FLUSH=full)
#   full-activity  full, tied through external correlation ids and runtime/driver API records for
#                  every call (MOESCOPE_GPU_CORRELATION=activity, the old way)
#   full-nonvtx    full without NVTX ranges (MOESCOPE_GPU_NVTX=0)
#   full-drain     full, the drain thread asking CUPTI for its completed buffers every 200 ms
#                  (MOESCOPE_GPU_FLUSH=drain) instead of taking them when full (full, the default)
#   full-worker    full, CUPTI's worker thread woken every 200 ms (MOESCOPE_GPU_FLUSH=worker)
#
# Usage, from the repository root: [MODES="off full"] bench/tracer/run_gputrace_h200.sh [BIN_DIR] [OUT_DIR]
set -uo pipefail
BIN=${1:-build-gput/bin}
OUTD=${2:-bench-out}
STEPS=${STEPS:-8}
ROUNDS=${ROUNDS:-2}
CFG=${CFG:-samples/bench-h200.toml}
MODES=${MODES:-off host full full-drain}
# EXTRA: more train options for every run, e.g. EXTRA="--set model.n_layers=4"
mkdir -p "$OUTD"
export NCCL_NVLS_ENABLE=${NCCL_NVLS_ENABLE:-0}

step_ms() {  # step_ms of steps 2 and later of a metrics file, one a line
  grep -o '"step_ms": [0-9.e+]*' "$1" | awk -F': ' 'NR > 2 { print $2 }'
}
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

for mode in $MODES; do
  case $mode in
    off|host|full|full-activity|full-nonvtx|full-drain|full-worker) ;;
    *) echo "unknown mode '$mode' (off, host, full, full-activity, full-nonvtx, full-drain, full-worker)" >&2; exit 2 ;;
  esac
done

for round in $(seq 1 "$ROUNDS"); do
  for mode in $MODES; do
    case $mode in
      off) env=(MOESCOPE_GPU_TRACE=1); set=(--set trace.enabled=false) ;;
      host) env=(MOESCOPE_GPU_TRACE=0); set=(--set trace.enabled=true) ;;
      full) env=(MOESCOPE_GPU_TRACE=1 MOESCOPE_GPU_CORRELATION=callbacks); set=(--set trace.enabled=true) ;;
      full-activity) env=(MOESCOPE_GPU_TRACE=1 MOESCOPE_GPU_CORRELATION=activity); set=(--set trace.enabled=true) ;;
      full-nonvtx) env=(MOESCOPE_GPU_TRACE=1 MOESCOPE_GPU_CORRELATION=callbacks MOESCOPE_GPU_NVTX=0); set=(--set trace.enabled=true) ;;
      full-drain) env=(MOESCOPE_GPU_TRACE=1 MOESCOPE_GPU_FLUSH=drain); set=(--set trace.enabled=true) ;;
      full-worker) env=(MOESCOPE_GPU_TRACE=1 MOESCOPE_GPU_FLUSH=worker); set=(--set trace.enabled=true) ;;
    esac
    m="$OUTD/$mode-$round.jsonl"
    t0=$(date +%s.%N)
    env "${env[@]}" timeout 120 "$BIN/moescope-cli" train --config "$CFG" --backend cuda --steps "$STEPS" "${set[@]}" \
      ${EXTRA:-} --metrics "$m" --out "$OUTD/$mode-$round.moescope" 2> "$OUTD/$mode-$round.log" || echo "$mode $round failed: $(tail -1 "$OUTD/$mode-$round.log")"
    echo "$mode round $round: median $(step_ms "$m" | median) ms, wall $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s, file $(du -k "$OUTD/$mode-$round.moescope" | cut -f1) KiB"
  done
done

mode_median() { for f in "$OUTD/$1"-[0-9]*.jsonl; do [ -e "$f" ] && step_ms "$f"; done | median; }
off=""
case " $MODES " in *" off "*) off=$(mode_median off) ;; esac
echo "| mode | median step ms | / off |"
echo "|---|---:|---:|"
for mode in $MODES; do
  med=$(mode_median "$mode")
  ratio=$(awk -v m="$med" -v o="${off:-0}" 'BEGIN { if (o > 0) printf "%.4f", m / o; else print "-" }')
  echo "| $mode | $med | $ratio |"
done
