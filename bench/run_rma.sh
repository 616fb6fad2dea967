#!/usr/bin/env bash
# Runs bench/rma over shared memory and over TCP on 2 ranks and writes
# rma_shm.csv and rma_tcp.csv into OUT_DIR (default: build/bench-results),
# then prints the rows the targets are about: 8 B put latency (target:
# within 1.10x of raw UCP), 8 B put rate (issue 13: at least 0.9x raw) and
# 2 MiB put/get bandwidth (target: at least 0.95x of raw; sizes step by 4x
# from 8 B). It also runs ucx_perftest's 8 B put latency over the same
# UCX_TLS right after, and prints dsm's default-progress latency against it
# (issue 13: at most 1.10x). Then bench/rma_noncontiguous: strided gets one
# get per run against one get of the span, and where the span stops paying.
# Figures are ratios measured in this one run.
#   bench/run_rma.sh [BUILD_DIR] [OUT_DIR]
set -euo pipefail
build=${1:-build}
out=${2:-$build/bench-results}
mkdir -p "$out"
export UCX_NET_DEVICES=lo  # TCP over loopback only

# ucx_perftest's average 8 B put latency in us over UCX_TLS=$1: a server in
# the background, then the client, retried until the server listens.
perftest_put_latency() {
  local tls=$1 iterations=$2 port=$((20000 + RANDOM % 20000)) server result=""
  UCX_TLS=$tls timeout 120 ucx_perftest -p "$port" -t ucp_put_lat -s 8 -n "$iterations" >/dev/null 2>&1 &
  server=$!
  for _ in $(seq 40); do
    result=$(UCX_TLS=$tls timeout 120 ucx_perftest localhost -p "$port" -t ucp_put_lat -s 8 -n "$iterations" 2>/dev/null |
             awk '/^Final:/ {print $4}') && [ -n "$result" ] && break
    sleep 0.25
  done
  wait "$server" 2>/dev/null || true
  [ -n "$result" ] || { echo "run_rma: ucx_perftest over $tls gave no result" >&2; return 1; }
  echo "$result"
}

declare -A tls=([shm]="self,posix,sysv,cma" [tcp]="tcp,self")
for transport in shm tcp; do
  scale=1 iterations=100000
  [ "$transport" = tcp ] && scale=0.25 iterations=5000  # TCP on loopback is ~50x slower: fewer iterations
  "$build/tools/dsmrun" --transport "$transport" --timeout 900 -n 2 "$build/bench/rma" --reps 5 --scale "$scale" \
    > "$out/rma_$transport.csv"
  echo "== $transport ($out/rma_$transport.csv)"
  awk -F, 'NR == 1 || ($3 == "put" && $5 == 8) || ($4 == "bandwidth_GBps" && $5 == 2097152)' \
    "$out/rma_$transport.csv" | column -t -s,
  perftest=$(perftest_put_latency "${tls[$transport]}" "$iterations")
  awk -F, -v p="$perftest" '$3 == "put" && $4 == "latency_us" && $5 == 8 {
      printf "8 B put latency, %s progress: dsm %.3f us, ucx_perftest %.3f us: %.2fx\n", $2, $6, p, $6 / p }' \
    "$out/rma_$transport.csv"
done

# Strided transfers: for each transport, the per-run cost and where
# fetching the whole span stops beating one get per run; the crossover is
# what detail::covers's covering_bytes_per_run_* constants should say; and
# where a packed put beats one put per run (detail::packs).
for transport in shm tcp; do
  "$build/tools/dsmrun" --transport "$transport" --timeout 900 -n 2 "$build/bench/rma_noncontiguous" --reps 5 \
    > "$out/rma_noncontiguous_$transport.csv"
  echo "== strided, $transport ($out/rma_noncontiguous_$transport.csv)"
  awk -F, 'NR > 1 && $3 == "get" { t[$5, $4] = $8; b[$5] = $7 / $6; if (!($5 in seen)) { seen[$5] = 1; order[++n] = $5 } }
           NR > 1 && $3 == "put" { p[$5, $4] = $8 }
    END {
      printf "%8s %12s %10s %12s %10s %12s %12s %10s\n", "stride", "bytes/run", "runs us", "covering us", "auto us",
             "put runs us", "packed us", "auto us"
      for (i = 1; i <= n; ++i) { s = order[i]
        printf "%8d %12d %10.2f %12.2f %10.2f %12.2f %12.2f %10.2f\n", s, b[s], t[s, "runs"], t[s, "covering"],
               t[s, "automatic"], p[s, "runs"], p[s, "packed"], p[s, "automatic"]
        if (i > 1 && t[s, "covering"] < t[s, "runs"]) last = b[s]
        if (i > 1) { packed_wins += p[s, "packed"] < p[s, "runs"]; strided++ } }
      printf "covering beats one get per run up to %d bytes per run\n", last
      printf "a packed put beats one put per run at %d of %d strides\n", packed_wins, strided
    }' "$out/rma_noncontiguous_$transport.csv"
  # Where packing starts to pay, by the number of runs (single-element runs, stride 2).
  echo "== packed puts by runs, $transport"
  for runs in 2 4 8 16 64; do
    "$build/tools/dsmrun" --transport "$transport" --timeout 900 -n 2 "$build/bench/rma_noncontiguous" --reps 9 \
      --elements "$runs" --max-stride 2 |
      awk -F, -v runs="$runs" '$3 == "put" && $5 == 2 { t[$4] = $8 }
        END { printf "%4d runs: one put per run %8.2f us, packed %8.2f us: %.2fx\n", runs, t["runs"], t["packed"],
                     t["packed"] / t["runs"] }'
  done
done
