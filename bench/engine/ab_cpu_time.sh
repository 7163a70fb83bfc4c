#!/usr/bin/env bash
# Two builds of bench_engine against each other on single-rank configs, by the CPU time (user + system)
# of the whole process rather than wall time: on the shared 2-core development machine other builds
# move wall time by 2x from run to run, CPU time by a few percent. The builds alternate ROUNDS times;
# prints each config's median CPU seconds for both and their ratio (B / A).
#
# Usage: bench/engine/ab_cpu_time.sh BENCH_A BENCH_B [ROUNDS]   (BENCH_*: bench_engine programs)
set -euo pipefail
A=${1:?bench_engine A}
B=${2:?bench_engine B}
ROUNDS=${3:-5}
STEPS=${STEPS:-12}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for n in dense ppmoe dpmoe; do  # one rank: pp = tp = dp = 1, the samples' micro-batches
  sed -e 's/^pp *=.*/pp = 1/' -e 's/^tp *=.*/tp = 1/' -e 's/^dp *=.*/dp = 1/' "samples/$n.toml" > "$tmp/$n.toml"
done
for _ in $(seq 1 "$ROUNDS"); do
  for side in A B; do
    bin=$A
    [ "$side" = B ] && bin=$B
    for n in dense ppmoe dpmoe; do
      /usr/bin/time -f "$side $n %U %S" "$bin" --steps "$STEPS" "$tmp/$n.toml" > /dev/null 2>> "$tmp/times"
    done
  done
done
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
for n in dense ppmoe dpmoe; do
  a=$(awk -v n="$n" '$1 == "A" && $2 == n { print $3 + $4 }' "$tmp/times" | median)
  b=$(awk -v n="$n" '$1 == "B" && $2 == n { print $3 + $4 }' "$tmp/times" | median)
  awk -v n="$n" -v a="$a" -v b="$b" 'BEGIN { printf "%-6s A %.2f s  B %.2f s  B/A %.3f\n", n, a, b, b / a }'
done
