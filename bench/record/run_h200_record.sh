#!/usr/bin/env bash
# `moescope-cli record` on the GPU server (1 GPU is enough), writing logs and runs under OUT:
#   1. gpt_nvtx.py recorded; torch.profiler's trace of the same steps from a separate run; every kernel
#      of it in the run, NVTX nesting, stage and micro-batch numbers (check_record.py);
#   2. a 2-process torchrun on the one GPU recorded with --pp 2: one run, both ranks;
#   3. overhead: step time under record over without, alternated rounds, median ratio, on two sizes of
#      the script (docs/bench-record.md): "tiny" (launch-bound) and "gpt" (kernels outlast launches),
#      each plain and recorded fully in every round, and in the first rounds also recorded with NVTX
#      only, without launch calls and with launch calls through callbacks, to tell the costs apart.
# Builds nothing: uses moescope-cli and libmoescope_inject.so of MOESCOPE_BUILD (bin/, lib/).
#   MOESCOPE_BUILD=DIR bench/record/run_h200_record.sh OUT      (about 7 minutes; parts 1-2: 1 minute)
# Environment: MOESCOPE_RECORD_PARTS (default "1 2 3"), MOESCOPE_RECORD_ROUNDS (5: plain and full),
# MOESCOPE_RECORD_EXTRA_ROUNDS (3: the other modes, in the first rounds), MOESCOPE_RECORD_BUDGET_S (430,
# from the start: by the runs' times so far, a round leaves out the other modes where they would leave
# no time for the plain and full runs of the rounds after it, and no round starts that would end past
# it; rounds.txt says what ran), MOESCOPE_RECORD_SIZES ("tiny gpt": the sizes part 3 measures). The
# summary ends the output (and is OUT/summary.txt). Exit 1 when a
# check of part 1 or 2 fails; the overhead's verdict is in the summary.
set -u
OUT=${1:?usage: run_h200_record.sh OUT}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${MOESCOPE_BUILD:-$ROOT/build-gpu}  # the GPU test points it at its own build
CLI=$BUILD/bin/moescope-cli
export MOESCOPE_INJECT_LIBRARY=$(ls "$BUILD"/lib*/libmoescope_inject.so | head -1)
SCRIPT=$HERE/gpt_nvtx.py
PARTS=${MOESCOPE_RECORD_PARTS:-1 2 3}
ROUNDS=${MOESCOPE_RECORD_ROUNDS:-5}
EXTRA_ROUNDS=${MOESCOPE_RECORD_EXTRA_ROUNDS:-3}
BUDGET=${MOESCOPE_RECORD_BUDGET_S:-430}
SIZES=${MOESCOPE_RECORD_SIZES:-tiny gpt}
status=0
SECONDS=0
{
  echo "date: $(date -Is)"; nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
  echo "cli: $CLI"; echo "inject: $MOESCOPE_INJECT_LIBRARY"; nproc
  # The host's CPU: the gpt size is close to launch-bound, so a slower CPU shows per-launch costs first.
  lscpu | grep -E '^(Model name|CPU MHz|CPU max MHz|Thread)' || true
  grep -m 4 MHz /proc/cpuinfo || true
  ldd "$MOESCOPE_INJECT_LIBRARY" | grep -E "not found|cupti|cudart|sqlite|pcre" || true
} > "$OUT/env.txt" 2>&1
: > "$OUT/summary.txt"
part() { case " $PARTS " in *" $1 "*) return 0 ;; esac; return 1; }

if part 1; then  # Kernels, nesting, rows.
  timeout 120 python3 "$SCRIPT" --steps 8 --profile-steps 4:6 --profile "$OUT/profile.json" > "$OUT/profile.log" 2>&1
  timeout 120 "$CLI" record -o "$OUT/gpt.moescope" -- python3 "$SCRIPT" --steps 8 > "$OUT/record.log" 2>&1
  echo "record exit: $?" >> "$OUT/record.log"
  timeout 60 python3 "$HERE/check_record.py" "$OUT/gpt.moescope" "$OUT/profile.json" 4 6 > "$OUT/check.txt" 2>&1 || status=1
  timeout 60 "$CLI" stats "$OUT/gpt.moescope" > "$OUT/gpt-stats.txt" 2>&1
  { echo "== part 1: every kernel of torch.profiler in the run, nesting, rows (check_record.py)"; cat "$OUT/check.txt"; } >> "$OUT/summary.txt"
fi

if part 2; then  # Two processes on one GPU, one run.
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
  { echo "== part 2: torchrun, 2 processes on one GPU, one run"; cat "$OUT/torchrun-check.txt"; } >> "$OUT/summary.txt"
fi

# One run of part 3: CONFIG MODE ROUND. Its step times go to D/CONFIG.MODE.ROUND.txt (none if it failed).
D=$OUT/overhead
config_args() {
  case $1 in
    tiny) echo "--steps 70 --warmup 10" ;;
    gpt) echo "--d-model 1024 --layers 8 --heads 16 --seq 1024 --batch 8 --vocab 32768 --bf16 --steps 45 --warmup 5" ;;
  esac
}
overhead_run() {
  local config=$1 mode=$2 round=$3 run=$D/$1.$2.$3.moescope
  local args; args=$(config_args "$config")
  local py=(python3 "$SCRIPT" $args --times "$D/$config.$mode.$round.txt")
  case $mode in
    plain) timeout 150 "${py[@]}" ;;
    nvtx) timeout 150 "$CLI" record --no-kernels -o "$run" -- "${py[@]}" ;;
    kernels) timeout 150 "$CLI" record --launch-calls off -o "$run" -- "${py[@]}" ;;
    full) timeout 150 "$CLI" record -o "$run" -- "${py[@]}" ;;
    callbacks) timeout 150 "$CLI" record --launch-calls callbacks -o "$run" -- "${py[@]}" ;;
  esac > "$D/$config.$mode.$round.log" 2>&1
  echo "exit $? after ${SECONDS}s" >> "$D/$config.$mode.$round.log"
  if [ -f "$run" ] && [ ! -f "$D/$config.$mode.counts" ]; then
    # What the run holds: kernels, kernels tied to a range (through their launch call), launch calls.
    python3 - "$run" > "$D/$config.$mode.counts" 2>> "$D/$config.$mode.$round.log" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
k, inrange = db.execute("SELECT COUNT(*), COALESCE(SUM(span >= 0), 0) FROM gpu_activity WHERE kind = 0").fetchone()
calls = db.execute("SELECT value FROM meta WHERE key LIKE '%launch_calls' LIMIT 1").fetchone()
print(k, inrange, calls[0] if calls else "?")
PY
  fi
  rm -f "$run"
}

if part 3; then  # Overhead: alternated rounds, median of the per-round ratios of median step times.
  mkdir -p "$D"
  rm -f "$D"/*
  # Seconds a run of each config takes, start to end (a guess until one has run): what a round will cost.
  declare -A spent=([tiny]=0 [gpt]=0) runs=([tiny]=0 [gpt]=0) guess=([tiny]=12 [gpt]=20)
  per_run() { [ "${runs[$1]}" -gt 0 ] && echo $(( (spent[$1] + runs[$1] - 1) / runs[$1] )) || echo "${guess[$1]}"; }
  for round in $(seq 1 "$ROUNDS"); do
    pair=0  # seconds for one run of each size
    for config in $SIZES; do pair=$((pair + $(per_run "$config"))); done
    main=$((2 * pair)); after=$(( (ROUNDS - round) * main ))
    extra=""
    if [ "$round" -le "$EXTRA_ROUNDS" ] && [ $((SECONDS + 5 * pair + after)) -le "$BUDGET" ]; then
      extra="nvtx kernels callbacks"
    elif [ "$round" -gt 1 ] && [ $((SECONDS + main)) -gt "$BUDGET" ]; then
      echo "round $round not started: ${SECONDS}s gone, a round of plain and full takes ~${main}s, budget ${BUDGET}s" >> "$D/rounds.txt"
      break
    fi
    began=$SECONDS
    for config in $SIZES; do
      modes="full $extra"
      # The plain run first, the recorded modes in turn forwards and backwards from round to round.
      [ $((round % 2)) -eq 0 ] && modes=$(echo $modes | tr ' ' '\n' | tac | tr '\n' ' ')
      for mode in plain $modes; do
        t0=$SECONDS
        overhead_run "$config" "$mode" "$round"
        spent[$config]=$((spent[$config] + SECONDS - t0)); runs[$config]=$((runs[$config] + 1))
      done
    done
    echo "round $round (plain, full${extra:+, $extra}): $((SECONDS - began))s, ${SECONDS}s gone" >> "$D/rounds.txt"
  done
  {
    echo "== part 3: overhead"
    timeout 60 python3 "$HERE/overhead_summary.py" "$D"
    cat "$D/rounds.txt"
    for c in $SIZES; do grep -h "median step" "$D/$c.plain.1.log" 2> /dev/null | sed "s/^/$c, plain, round 1: /"; done
  } >> "$OUT/summary.txt" 2>&1
fi
echo "== done in ${SECONDS}s; logs and runs in $OUT" >> "$OUT/summary.txt"
cat "$OUT/summary.txt"
exit $status
