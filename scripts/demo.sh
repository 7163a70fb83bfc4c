#!/usr/bin/env bash
# The main job in one step: install, build, train the sample PPMoE config on the CPU into a run file,
# print its statistics, and open the GUI on it; without a display, write pictures of it instead.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
build=${MOESCOPE_BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "$(nproc)" --target moescope-cli moescope 2>&1 | tail -n 1
mkdir -p out
"$build"/bin/moescope-cli train --config samples/ppmoe.toml --backend cpu \
  --out out/ppmoe.moescope --metrics out/ppmoe.metrics.jsonl
"$build"/bin/moescope-cli stats out/ppmoe.moescope
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  exec "$build"/bin/moescope out/ppmoe.moescope
fi
"$build"/bin/moescope --render out/ppmoe-timeline.png out/ppmoe.moescope --size 1920x1080
echo "no display: wrote out/ppmoe-timeline.png (open out/ppmoe.moescope in moescope on a desktop)"
