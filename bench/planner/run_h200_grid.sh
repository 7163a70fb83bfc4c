#!/usr/bin/env bash
# The planner's CPU acceptance grid (docs/PLANNER.md) on a quiet host: the GPU server's CPU cores,
# which nothing else uses while it runs. Builds nothing: uses the prebuilt build folder.
#   bench/planner/run_h200_grid.sh OUT [BUILD]     (BUILD: default build-gpu)
# Writes OUT/grid_test.log (the gtest, its table and verdict) and OUT/grid_py.log (the same grid
# with 2 repeats per configuration, medians pooled) and OUT/host.txt.
set -u
out=${1:?usage: run_h200_grid.sh OUT [BUILD]}
build=${2:-build-gpu}
mkdir -p "$out"
{ nproc; uptime; date; } > "$out/host.txt"
# The 2-core development VM's conditions: two cores for the runs (as the calibration records them).
taskset -c 0,1 "$build/bin/moescope_planner_grid_tests" > "$out/grid_test.log" 2>&1
echo "exit $?" >> "$out/grid_test.log"
taskset -c 0,1 python3 "$(dirname "$0")/grid.py" "$build/bin/moescope-cli" "$out/runs" --steps 3 --repeat 2 \
  > "$out/grid_py.log" 2>&1
echo "exit $?" >> "$out/grid_py.log"
