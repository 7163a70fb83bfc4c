# Helpers the one-call GPU scripts share (sourced, not run): a time budget split into stages, each
# logged under OUT; gtest counts; the median tokens/s of a metrics file; model FLOPs per token of a
# config with its --set overrides. The caller sets OUT and BUDGET (seconds) before sourcing.
START=$(date +%s)

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

# The GPU, driver, PyTorch and cuDNN, the commit, and whether moescope-cli finds its libraries, into
# OUT/info.log and on stdout.
machine_info() {
  {
    echo "# $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1), $(date -u '+%Y-%m-%d %H:%M UTC')"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
    python3 -c 'import torch; print("torch", torch.__version__, "cuDNN", torch.backends.cudnn.version())' 2>&1
    ls -l /usr/lib/x86_64-linux-gnu/libcudnn.so.9* 2>&1
    git log -1 --format='commit %h %s' 2>/dev/null
    ldd "$BIN/moescope-cli" | grep -E "not found" || echo "moescope-cli: every library found"
  } > "$OUT/info.log" 2>&1
  cat "$OUT/info.log"
}

# each_test_alone NAME CAP BINARY: every test of a gtest binary in a process of its own, as ctest runs
# them (CUPTI's state is per process: test_cupti_collector's launch-call cases fail when one process runs
# them one after another), all logged to OUT/NAME.log; CAP bounds the whole.
each_test_alone() {
  local name=$1 cap=$2 bin=$3 t0=$(date +%s) suite="" line
  : > "$OUT/$name.log"
  note "[$(elapsed) s] $name (at most $cap s, each test alone): $bin"
  while IFS= read -r line; do
    if [[ $line != " "* ]]; then suite=${line%% *}; continue; fi
    line=${line#  }
    (($(date +%s) - t0 < cap)) || { echo "budget spent before ${suite}${line%% *}" >> "$OUT/$name.log"; break; }
    timeout --kill-after=5 60 "$bin" --gtest_filter="${suite}${line%% *}" >> "$OUT/$name.log" 2>&1
  done < <("$bin" --gtest_list_tests 2>/dev/null)
  note "[$(elapsed) s] $name: done after $(($(date +%s) - t0)) s"
}

# passed / failed / skipped of a gtest log
gtest_counts() {
  local log=$1
  printf "%s passed, %s failed, %s skipped" \
    "$(grep -c '^\[       OK \]' "$log")" "$(grep -c '^\[  FAILED  \] [A-Za-z].*(' "$log")" \
    "$(grep -c '^\[  SKIPPED \] [A-Za-z].*(' "$log")"
}

# cudnn_from_torch_if_failed LOG: where the system's cuDNN could not run the attention in the test log,
# try PyTorch's (its wheel ships one) and, where its cuDNN tests pass, export it for what follows
# (MOESCOPE_CUDNN_LIBRARY). Adds a line to the array TEST_SUMMARY.
cudnn_from_torch_if_failed() {
  grep -q '^\[  FAILED  \] CudnnAttention\|no cuDNN 9' "$1" || return 0
  local lib
  lib=$(python3 -c 'import glob, os, nvidia.cudnn as c; print((glob.glob(os.path.join(list(c.__path__)[0], "lib", "libcudnn.so.9*")) or [""])[0])' 2>/dev/null)
  [ -n "$lib" ] || return 0
  note "cuDNN attention failed with the system's libcudnn; again with $lib"
  if MOESCOPE_CUDNN_LIBRARY="$lib" stage cudnn-tests-torch-lib 60 "$BIN/moescope_engine_cuda_tests" \
      --gtest_filter='Cudnn*'; then
    export MOESCOPE_CUDNN_LIBRARY="$lib"
  fi
  TEST_SUMMARY+=("cuDNN tests with PyTorch's libcudnn: $(gtest_counts "$OUT/cudnn-tests-torch-lib.log")")
}

# The median of numbers, one a line on stdin (0 for none).
median() {
  sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Median tokens/s of a metrics file (JSONL), steps 2 and later.
median_tps() {
  # the metrics file is compact JSON ("tokens_per_s":1.2e5); a space after the colon is taken too
  grep -o '"tokens_per_s": *[0-9.e+]*' "$1" | sed 's/.*: *//' | awk 'NR > 2' | median
}

# The largest peak_memory_bytes of a metrics file, in MiB (0 where it has none): the engine's own count
# of its device allocations, the most one rank held (app/metrics_line.h).
engine_peak_mib() {
  grep -o '"peak_memory_bytes": *[0-9]*' "$1" 2>/dev/null |
    awk -F': *' '$2 > m { m = $2 } END { printf "%.0f\n", m / 1048576 }'
}

# flops_per_token CFG [--set model.key=value ...]: 6 x active parameters (every layer's matrices and
# biases, the top-k experts of MoE layers, the router, the LM head) + 12 x layers x sequence x d_model.
flops_per_token() {
  python3 - "$@" <<'PY'
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
PY
}

# run_train NAME CAP CFG ARGS...: moescope-cli train on CFG with ARGS (--backend cuda, metrics to
# OUT/NAME.jsonl), with the environment assignments of the array RUN_ENV (may be empty), as stage NAME.
# Sets RUN_RC (its status), RUN_TPS (median tokens/s, steps 2 and later), RUN_FPT (model FLOPs per
# token), RUN_PEAK_MIB (the largest memory.used nvidia-smi saw during the run: the device's count,
# context and libraries included) and RUN_ENGINE_PEAK_MIB (the engine's own peak from the metrics file:
# its allocations only, what PyTorch's max_memory_allocated counts).
RUN_ENV=()
run_train() {
  local name=$1 cap=$2 cfg=$3
  shift 3
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 500 > "$OUT/$name.mem" 2>/dev/null &
  local smi=$!
  stage "$name" "$cap" env "${RUN_ENV[@]}" "$BIN/moescope-cli" train --config "$cfg" --backend cuda \
    --metrics "$OUT/$name.jsonl" "$@"
  RUN_RC=$?
  kill "$smi" 2>/dev/null
  wait "$smi" 2>/dev/null
  RUN_TPS=0
  RUN_FPT=$(flops_per_token "$cfg" "$@")
  RUN_PEAK_MIB=$(sort -n "$OUT/$name.mem" | tail -1)
  RUN_ENGINE_PEAK_MIB=$(engine_peak_mib "$OUT/$name.jsonl")
  if ((RUN_RC == 0)); then RUN_TPS=$(median_tps "$OUT/$name.jsonl"); fi
  return 0
}
