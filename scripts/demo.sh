#!/usr/bin/env bash
# The main job in one step: install, build, train the sample PPMoE config on the CPU into a run file,
# print its statistics, and open the GUI on it. Without a display the GUI draws the run to pictures
# beside the run file and says where they are.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
build=${MOESCOPE_BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "$(nproc)" --target moescope-cli moescope
mkdir -p out
"$build"/bin/moescope-cli train --config samples/ppmoe.toml --backend cpu \
  --out out/ppmoe.moescope --metrics out/ppmoe.metrics.jsonl
"$build"/bin/moescope-cli stats out/ppmoe.moescope
exec "$build"/bin/moescope out/ppmoe.moescope
