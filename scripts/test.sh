#!/usr/bin/env bash
# Installs the packages, checks the source tree (module rules of docs/MODULES.md, clang-format), builds
# everything with warnings as errors, and runs every test through ctest (which also shows that both
# checks fail on a planted violation: check_includes_self_test, check_format_self_test); then builds
# moescope-cli and the fuzzer with AddressSanitizer and UndefinedBehaviorSanitizer (no GUI, no CUDA;
# -O0 with line tables, which compiles in half the time of -O2) and fuzzes the CLI's inputs: every case
# must exit 0 or 2 with one line and no sanitizer report (tests/fuzz, docs/RELIABILITY.md).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
python3 scripts/check-includes.py
python3 scripts/check-format.py
build=${MOESCOPE_BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMOESCOPE_WERROR=ON
cmake --build "$build" -j "$(nproc)"
QT_QPA_PLATFORM=offscreen ctest --test-dir "$build" --output-on-failure -j "$(nproc)"

sanitized=${MOESCOPE_SANITIZE_BUILD_DIR:-build-sanitize}
cmake -S . -B "$sanitized" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG=-g1 -DCMAKE_CXX_FLAGS_DEBUG=-g1 \
  -DMOESCOPE_WERROR=ON -DMOESCOPE_GUI=OFF -DMOESCOPE_CUDA=OFF -DMOESCOPE_BENCH=OFF -DMOESCOPE_TESTS=OFF \
  -DMOESCOPE_SANITIZE=address,undefined -DMOESCOPE_FUZZ_CASES="${MOESCOPE_FUZZ_CASES:-100}"
cmake --build "$sanitized" -j "$(nproc)" --target moescope-cli moescope_fuzz
ctest --test-dir "$sanitized" --output-on-failure
