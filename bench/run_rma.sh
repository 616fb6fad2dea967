#!/usr/bin/env bash
# Runs bench/rma over shared memory and over TCP on 2 ranks and writes
# rma_shm.csv and rma_tcp.csv into OUT_DIR (default: build/bench-results),
# then prints the rows the targets are about: 8 B put latency (target:
# within 1.10x of raw UCP) and 1 MiB put/get bandwidth (target: at least
# 0.95x of raw). Figures are ratios measured in this one run.
#   bench/run_rma.sh [BUILD_DIR] [OUT_DIR]
set -euo pipefail
build=${1:-build}
out=${2:-$build/bench-results}
mkdir -p "$out"
for transport in shm tcp; do
  scale=1
  [ "$transport" = tcp ] && scale=0.25   # TCP on loopback is ~50x slower: fewer iterations
  "$build/tools/dsmrun" --transport "$transport" --timeout 900 -n 2 "$build/bench/rma" --reps 5 --scale "$scale" \
    > "$out/rma_$transport.csv"
  echo "== $transport ($out/rma_$transport.csv)"
  awk -F, 'NR == 1 || ($3 == "put" && $4 == "latency_us" && $5 == 8) || ($4 == "bandwidth_GBps" && $5 == 1048576)' \
    "$out/rma_$transport.csv" | column -t -s,
done
