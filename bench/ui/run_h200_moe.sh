#!/usr/bin/env bash
# The MoE routing recorded by the CUDA backend, on the GPU server, building nothing: the sample PPMoE
# model (pp 2 x tp 2) and DPMoE model (pp 2 x dp 2) with capacity factor 1.0, 6 steps each on 4 GPUs
# (or pp 1 on 2), then `stats --json`, the load CSV, and a check of every routing group:
# kept + dropped = its assignments, and dropped > 0 somewhere (the capacity drops).
#
# Usage, from the repository root: bench/ui/run_h200_moe.sh BIN_DIR OUT_DIR
#   BIN_DIR holds moescope-cli (e.g. build-gpu/bin).
set -uo pipefail
BIN=${1:?BIN_DIR}
OUTD=${2:?OUT_DIR}
mkdir -p "$OUTD"
export NCCL_NVLS_ENABLE=${NCCL_NVLS_ENABLE:-0}
export LD_LIBRARY_PATH="$BIN/lib:${LD_LIBRARY_PATH:-}"
gpus=$(nvidia-smi --list-gpus 2>/dev/null | wc -l)
pp=2
[ "$gpus" -ge 4 ] || pp=1
status=0
for layout in ppmoe dpmoe; do
  run="$OUTD/$layout-cuda.moescope"
  if ! timeout 300 "$BIN/moescope-cli" train --backend cuda --config "samples/$layout.toml" --steps 6 \
      --set parallel.pp=$pp --set model.capacity_factor=1.0 --out "$run" > "$OUTD/$layout-train.log" 2>&1; then
    echo "$layout: train FAILED, see $OUTD/$layout-train.log"
    status=1
    continue
  fi
  "$BIN/moescope-cli" stats "$run" > "$OUTD/$layout-stats.txt" 2>&1
  "$BIN/moescope-cli" stats "$run" --json > "$OUTD/$layout-stats.json" 2>&1
  "$BIN/moescope-cli" export "$run" --format moe-load -o "$OUTD/$layout-load.csv" > /dev/null 2>&1
  # kept + dropped = assignments per (step, micro-batch, layer, replica).
  if awk -F, 'NR > 1 { k = $1 "," $2 "," $3 "," $4; kept[k] += $8; a[k] = $5; d[k] = $6 }
      END { bad = 0; for (k in kept) if (kept[k] + d[k] != a[k]) { print "group " k ": kept " kept[k] " + dropped " d[k] " != " a[k]; bad = 1 }
            n = 0; for (k in kept) { n++; dropped += d[k] }
            print n " groups, " dropped " assignments dropped"; exit bad || dropped == 0 }' "$OUTD/$layout-load.csv" \
      > "$OUTD/$layout-check.txt"; then
    echo "$layout: routing conserved ($(tail -1 "$OUTD/$layout-check.txt"))"
  else
    echo "$layout: routing check FAILED: $(cat "$OUTD/$layout-check.txt")"
    status=1
  fi
  sed -n '/MoE routing/,/^$/p' "$OUTD/$layout-stats.txt"
done
exit $status
