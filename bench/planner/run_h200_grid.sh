#!/usr/bin/env bash
# The planner's CPU acceptance grid (docs/PLANNER.md) on a quiet host: the GPU server's CPU cores,
# which nothing else uses while it runs (no GPU needed). Builds nothing: uses the prebuilt build folder.
#   bench/planner/run_h200_grid.sh OUT [BUILD]     (BUILD: default build-gpu)
# About 5 minutes, at most 8 (each part under `timeout`). Writes:
#   OUT/summary.txt      the verdict of each part, one line each, and where to look
#   OUT/host.txt         the host: cores, CPU model, load, date
#   OUT/grid_6cores.log  the acceptance grid with a core per rank thread: pinned to 6 cores (4 rank
#                        threads at pp 4, the tracer's writer, the main thread), 6 steps a run, 3
#                        repetitions of every configuration (medians). This is the acceptance measurement.
#   OUT/grid_2cores.log  the same grid pinned to 2 cores, 1 repetition: 4 rank threads share 2 cores at
#                        pp 4, the planner's processor-sharing model under test (informative).
# Each log starts with the cores the runs may use and the load average, lists every configuration's
# repetitions and their spread, what the planner took from the calibration run (its cores), and ends
# with "N of 15 within 15% and 5 points" and the gtest verdict.
set -u
out=${1:?usage: run_h200_grid.sh OUT [BUILD]}
build=${2:-build-gpu}
test="$build/bin/moescope_planner_grid_tests"
mkdir -p "$out"
{
  date -u
  echo "nproc: $(nproc)   uptime: $(uptime)"
  lscpu | grep -E '^(Model name|CPU\(s\)|Thread|Core|Socket|NUMA node|CPU max MHz)' || true
  cat /sys/devices/system/cpu/cpu0/cpufreq/scaling_governor 2>/dev/null | sed 's/^/governor: /'
  echo "busiest processes:"; ps -eo pcpu,comm --sort=-pcpu | head -6
} > "$out/host.txt" 2>&1
if [ ! -x "$test" ]; then
  echo "no $test: build the target moescope_planner_grid_tests (and moescope-cli) in $build" | tee "$out/summary.txt"
  exit 2
fi
verdict() {  # the log's result line and the gtest verdict
  local log=$1
  echo "$(basename "$log"): $(grep -E 'of 15 within' "$log" | tail -1 || true) [$(grep -E '^\[  (PASSED|FAILED)  \]' "$log" | head -1)] $(tail -1 "$log")"
}
# Cores 2-7: away from core 0, where interrupts land. A core per rank thread: no processor sharing.
MOESCOPE_GRID_STEPS=6 MOESCOPE_GRID_REPEAT=3 timeout 300 taskset -c 2-7 "$test" > "$out/grid_6cores.log" 2>&1
echo "exit $?" >> "$out/grid_6cores.log"
verdict "$out/grid_6cores.log" > "$out/summary.txt"
# The processor-sharing case, in what is left of 8 minutes.
if [ "$SECONDS" -lt 320 ]; then
  MOESCOPE_GRID_STEPS=6 MOESCOPE_GRID_REPEAT=1 timeout $((460 - SECONDS)) taskset -c 2,3 "$test" \
    > "$out/grid_2cores.log" 2>&1
  echo "exit $?" >> "$out/grid_2cores.log"
  verdict "$out/grid_2cores.log" >> "$out/summary.txt"
else
  echo "grid_2cores.log: skipped (the 6-core grid took ${SECONDS} s)" >> "$out/summary.txt"
fi
echo "(exit 124: stopped by its timeout; the log then ends at the last repetition done)" >> "$out/summary.txt"
cat "$out/summary.txt"
