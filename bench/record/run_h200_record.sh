#!/usr/bin/env bash
# `moescope-cli record` on the GPU server (1 GPU is enough), writing logs and runs under OUT:
#   1. gpt_nvtx.py recorded; torch.profiler's trace of the same steps from a separate run; every kernel
#      of it in the run, NVTX nesting, stage and micro-batch numbers (check_record.py);
#   2. a 2-process torchrun on the one GPU recorded with --pp 2: one run, both ranks;
#   3. overhead: step time under record over without, 5 alternated rounds, median ratio.
# Builds nothing: uses build-gpu/bin/moescope-cli and build-gpu/lib/libmoescope_inject.so.
#   bench/record/run_h200_record.sh OUT          (about 3 minutes)
set -u
OUT=${1:?usage: run_h200_record.sh OUT}
mkdir -p "$OUT"
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${MOESCOPE_BUILD:-$ROOT/build-gpu}  # the GPU test points it at its own build
CLI=$BUILD/bin/moescope-cli
export MOESCOPE_INJECT_LIBRARY=$(ls "$BUILD"/lib*/libmoescope_inject.so | head -1)
SCRIPT=$HERE/gpt_nvtx.py
status=0
{
  echo "date: $(date -Is)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
  ldd "$MOESCOPE_INJECT_LIBRARY" | grep -E "not found|cupti|cudart|sqlite|pcre" || true
} > "$OUT/env.txt" 2>&1

# 1. Kernels, nesting, rows.
timeout 120 python3 "$SCRIPT" --steps 8 --profile-steps 4:6 --profile "$OUT/profile.json" > "$OUT/profile.log" 2>&1
timeout 120 "$CLI" record -o "$OUT/gpt.moescope" -- python3 "$SCRIPT" --steps 8 > "$OUT/record.log" 2>&1
echo "record exit: $?" >> "$OUT/record.log"
timeout 60 python3 "$HERE/check_record.py" "$OUT/gpt.moescope" "$OUT/profile.json" 4 6 > "$OUT/check.txt" 2>&1 || status=1
timeout 60 "$CLI" stats "$OUT/gpt.moescope" > "$OUT/gpt-stats.txt" 2>&1

# 2. Two processes on one GPU, one run.
timeout 120 "$CLI" record --pp 2 -o "$OUT/torchrun.moescope" -- \
  torchrun --standalone --nproc-per-node 2 "$SCRIPT" --steps 4 > "$OUT/torchrun.log" 2>&1
echo "record exit: $?" >> "$OUT/torchrun.log"
timeout 60 python3 - "$OUT/torchrun.moescope" > "$OUT/torchrun-check.txt" 2>&1 <<'PY' || status=1
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
ranks = db.execute("SELECT rank, stage FROM rank ORDER BY rank").fetchall()
kernels = db.execute("SELECT t.rank, COUNT(*) FROM gpu_activity g JOIN track t ON t.id = g.track GROUP BY t.rank").fetchall()
print("ranks (rank, stage):", ranks, "kernels per rank:", kernels)
ok = ranks == [(0, 0), (1, 1)] and len(kernels) == 2
print("OK" if ok else "FAILED"); sys.exit(0 if ok else 1)
PY

# 3. Overhead: alternated rounds, median of the per-round ratios of median step times.
for round in 1 2 3 4 5; do
  timeout 120 python3 "$SCRIPT" --steps 30 --times "$OUT/plain-$round.txt" > /dev/null 2>&1
  timeout 120 "$CLI" record -o "$OUT/overhead-$round.moescope" -- \
    python3 "$SCRIPT" --steps 30 --times "$OUT/recorded-$round.txt" > /dev/null 2>&1
  rm -f "$OUT/overhead-$round.moescope"
done
timeout 60 python3 - "$OUT" > "$OUT/overhead.txt" 2>&1 <<'PY' || status=1
import statistics, sys
out = sys.argv[1]
ratios = []
for r in range(1, 6):
    plain = statistics.median(float(x) for x in open(f"{out}/plain-{r}.txt"))
    rec = statistics.median(float(x) for x in open(f"{out}/recorded-{r}.txt"))
    ratios.append(rec / plain)
    print(f"round {r}: plain {plain*1e3:.3f} ms, recorded {rec*1e3:.3f} ms, ratio {rec/plain:.4f}")
m = statistics.median(ratios)
print(f"median ratio {m:.4f} (limit 1.03)")
print("OK" if m <= 1.03 else "FAILED"); sys.exit(0 if m <= 1.03 else 1)
PY
cat "$OUT/check.txt" "$OUT/torchrun-check.txt" "$OUT/overhead.txt"
exit $status
