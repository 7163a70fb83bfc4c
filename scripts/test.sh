#!/usr/bin/env bash
# Installs the packages, checks the source tree (module rules of docs/MODULES.md, clang-format), builds
# everything with warnings as errors, and runs every test through ctest (which also shows that both
# checks fail on a planted violation: check_includes_self_test, check_format_self_test).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
python3 scripts/check-includes.py
python3 scripts/check-format.py
build=${MOESCOPE_BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMOESCOPE_WERROR=ON
cmake --build "$build" -j "$(nproc)"
QT_QPA_PLATFORM=offscreen ctest --test-dir "$build" --output-on-failure -j "$(nproc)"
