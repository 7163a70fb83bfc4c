#!/usr/bin/env bash
# The CUDA engine's benchmark on the 2 x H200 server (docs/bench-cuda.md): tokens/s and MFU of
# samples/bench-h200.toml for the dense backbone on 1 GPU and with tp = 2, PPMoE tp = 2, DPMoE dp = 2
# and PPMoE pp = 2 1F1B; the PPMoE/backbone and PPMoE/DPMoE ratios; the tp all-reduce's bus bandwidth
# inside the engine (from a traced run) beside a standalone NCCL all-reduce of the same size.
#
# Usage, from the repository root: bench/engine/run_h200.sh [BIN_DIR] [OUT_DIR]
#   BIN_DIR holds moescope-cli and nccl_allreduce_bench (default build-cuda/bin; BIN_DIR/lib is put on
#   LD_LIBRARY_PATH for libraries the server lacks). STEPS (default 12) steps per run; tokens/s is the
#   median over the steps after the first two.
#
# MFU = tokens/s x model FLOPs per token / (989e12 x GPUs), model FLOPs per token = 6 x active
# parameters (every layer's matrices and biases with the top-k experts of MoE layers, the router and
# the LM head; the embedding lookups left out) + 12 x layers x sequence x d_model (attention scores).
set -euo pipefail
BIN=${1:-build-cuda/bin}
OUTD=${2:-bench-out}
STEPS=${STEPS:-12}
CFG=samples/bench-h200.toml
mkdir -p "$OUTD"
export NCCL_NVLS_ENABLE=${NCCL_NVLS_ENABLE:-0}
export LD_LIBRARY_PATH="$BIN/lib:${LD_LIBRARY_PATH:-}"

# Model FLOPs per token of the benchmark model, dense (E = 0) or with its experts.
flops() {
  awk -v E="$1" 'BEGIN { C = 2048; F = 8192; V = 50304; L = 8; T = 1024; K = 2; every = 2;
    attn = 4 * C * C + 4 * C; ffn = 2 * C * F + F + C; ln = 4 * C;
    if (E == 0) active = L * (attn + ffn + ln) + V * C;
    else active = (L / every) * (attn + ffn + ln) + (L / every) * (attn + ln + C * E + K * ffn) + V * C;
    printf "%.6g %.6g", active, 6 * active + 12 * L * T * C }'
}

source "$(dirname "$0")/h200_lib.sh"  # median_tps

declare -A TPS
run() {
  local name=$1 gpus=$2 experts=$3
  shift 3
  local t0=$(date +%s.%N)
  if "$BIN/moescope-cli" train --config "$CFG" --backend cuda --steps "$STEPS" --metrics "$OUTD/$name.jsonl" "$@" \
      2> "$OUTD/$name.log"; then
    local tps=$(median_tps "$OUTD/$name.jsonl")
    read -r active fpt <<< "$(flops "$experts")"
    local mfu=$(awk -v t="$tps" -v f="$fpt" -v g="$gpus" 'BEGIN { printf "%.1f", 100 * t * f / (989e12 * g) }')
    TPS[$name]=$tps
    printf "| %s | %d | %.0f | %s%% | %.3g | %.1f s |\n" "$name" "$gpus" "$tps" "$mfu" "$fpt" \
      "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')"
  else
    TPS[$name]=0
    echo "| $name | $gpus | failed: $(tail -1 "$OUTD/$name.log") | | | |"
  fi
}

echo "## $(date -u '+%Y-%m-%d %H:%M UTC'), $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1) x $(nvidia-smi -L | wc -l)"
echo
echo "| run | GPUs | tokens/s | MFU | FLOPs/token | wall (incl. init) |"
echo "|---|---|---|---|---|---|"
run dense-1gpu 1 0 --set model.n_experts=0 --set parallel.tp=1
run dense-tp2 2 0 --set model.n_experts=0
run ppmoe-tp2 2 16
run dpmoe-dp2 2 16 --set parallel.layout=dpmoe --set parallel.tp=1 --set parallel.dp=2
run ppmoe-pp2-1f1b 2 16 --set parallel.tp=1 --set parallel.pp=2 --set parallel.microbatches=8
echo
awk -v p="${TPS[ppmoe-tp2]}" -v b="${TPS[dense-tp2]}" -v d="${TPS[dpmoe-dp2]}" \
  'BEGIN { if (b > 0) printf "PPMoE tp=2 / dense tp=2: %.3f\n", p / b; if (d > 0) printf "PPMoE tp=2 / DPMoE dp=2: %.3f\n", p / d }'

# The tp all-reduce inside the engine: a dense tp = 2 run traced by host spans only (which then wait for the GPU at every
# span, so each all-reduce span covers the transfer alone, from the last member's arrival).
echo
MOESCOPE_GPU_TRACE=0 "$BIN/moescope-cli" train --config "$CFG" --backend cuda --steps 4 --set model.n_experts=0 --set trace.enabled=true \
  --out "$OUTD/dense-tp2-traced.moescope" 2> "$OUTD/dense-tp2-traced.log" || tail -1 "$OUTD/dense-tp2-traced.log"
"$BIN/moescope-cli" export "$OUTD/dense-tp2-traced.moescope" --format csv -o "$OUTD/dense-tp2-traced.csv" > /dev/null
echo "In-engine tp all-reduce (dense tp=2, steps 1-3, bf16), bus bandwidth = bytes / time for 2 GPUs:"
awk -F, 'NR > 1 && $8 == "comm.tp_allreduce" && $10 >= 1 { print $6, $14 }' "$OUTD/dense-tp2-traced.csv" | sort -g |
  awk '{ t[NR] = $1; b = $2 } END { m = t[int((NR + 1) / 2)];
    printf "  %d all-reduces of %.1f MiB: median %.3f ms, %.1f GB/s\n", NR, b / 1048576, m / 1e6, b / m }'
echo
echo "Standalone NCCL all-reduce, same size:"
"$BIN/nccl_allreduce_bench" --gpus 2 64 256

# Where a step's time goes (BREAKDOWN=1): traced runs, rank 0's step 2 summed by category. Tracing waits
# for the GPU at every span, so these are each part's GPU time without overlap, plus launch gaps.
if [ "${BREAKDOWN:-0}" = 1 ]; then
  for spec in "dense-1gpu --set model.n_experts=0 --set parallel.tp=1" "ppmoe-tp2"; do
    read -r name args <<< "$spec"
    # shellcheck disable=SC2086
    MOESCOPE_GPU_TRACE=0 "$BIN/moescope-cli" train --config "$CFG" --backend cuda --steps 3 --set trace.enabled=true $args \
      --out "$OUTD/$name-traced.moescope" 2> "$OUTD/$name-traced.log" || tail -1 "$OUTD/$name-traced.log"
    "$BIN/moescope-cli" export "$OUTD/$name-traced.moescope" --format csv -o "$OUTD/$name-traced.csv" > /dev/null
    echo
    echo "$name, rank 0, step 2 (traced), ms by category:"
    awk -F, 'NR > 1 && $2 == 0 && $10 == 2 { d[$8] += $6; t += $6 } END { for (k in d) printf "  %-20s %8.2f\n", k, d[k] / 1e6; printf "  %-20s %8.2f\n", "total", t / 1e6 }' \
      "$OUTD/$name-traced.csv" | sort -k2 -g -r
  done
fi
