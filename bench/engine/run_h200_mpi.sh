#!/usr/bin/env bash
# The CUDA backend under mpirun on the GPU server: the multi-process tests (tests/app/cli_train_mpi_test.cpp,
# among them the CUDA one: `mpirun -np 1` equals the run started by hand, on 1 and, where there are two
# GPUs, 2 ranks), then a traced `mpirun -np 1` run and its stats. Builds nothing: uses the prebuilt
# build-gpu/ folder.
#   bench/engine/run_h200_mpi.sh OUT_DIR
set -uo pipefail
out=${1:?usage: run_h200_mpi.sh OUT_DIR}
mkdir -p "$out"
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=$root/build-gpu/bin
cd "$out"
nvidia-smi -L > gpus.txt 2>&1
mpirun --version > mpirun-version.txt 2>&1
"$bin/moescope_cli_train_mpi_tests" --gtest_filter='*Cuda*' > cuda-mpi-test.log 2>&1
echo "cuda mpi test: exit $?" | tee -a summary.txt
timeout 300 mpirun -np 1 --allow-run-as-root "$bin/moescope-cli" train --config "$root/samples/ppmoe.toml" \
  --backend cuda --set parallel.pp=1 --set parallel.tp=1 --steps 5 --out mpi1.moescope --metrics mpi1.jsonl \
  > mpi1.log 2>&1
echo "mpirun -np 1: exit $?" | tee -a summary.txt
timeout 300 "$bin/moescope-cli" train --config "$root/samples/ppmoe.toml" --backend cuda --set parallel.pp=1 \
  --set parallel.tp=1 --steps 5 --metrics single.jsonl > single.log 2>&1
echo "single process: exit $?" | tee -a summary.txt
paste -d'\n' mpi1.jsonl single.jsonl > losses-side-by-side.txt
"$bin/moescope-cli" stats mpi1.moescope > mpi1.stats.txt 2>&1
"$bin/moescope_cli_train_mpi_tests" > all-mpi-tests.log 2>&1
echo "all mpi tests: exit $?" | tee -a summary.txt
