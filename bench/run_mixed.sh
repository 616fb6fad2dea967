#!/usr/bin/env bash
# The arm64 side of a mixed-ISA job, measured in one run (figures under
# qemu-user show that it works and what it does, not arm64 hardware cost):
#   cache_maintenance_arm64.csv  bench/cache_maintenance on arm64 (qemu)
#   coherence_mixed.csv          bench/coherence with an arm64 rank 0 measuring
#                                against an x86-64 home (rank 1), over shm
#   cg_mixed.csv                 NPB CG class S: 2 x86-64 ranks against
#                                1 x86-64 + 1 arm64 rank (best of --reps), ratio
#   bench/run_mixed.sh [NATIVE_BUILD] [ARM64_BUILD] [OUT_DIR] [REPS]
set -euo pipefail
native=${1:-build}
arm=${2:-build-arm64}
out=${3:-$native/bench-results}
reps=${4:-3}
mkdir -p "$out"
qemu=(qemu-aarch64 -L /)

"${qemu[@]}" "$arm/bench/cache_maintenance" --max-bytes 1048576 --reps 5 > "$out/cache_maintenance_arm64.csv"
echo "== cache maintenance on arm64 under qemu ($out/cache_maintenance_arm64.csv, sweep size)"
awk -F, 'NR == 1 || $1 == "size"' "$out/cache_maintenance_arm64.csv" | column -t -s,

"$native/tools/dsmrun" --transport shm -n 1 "${qemu[@]}" "$arm/bench/coherence" --units 16 --reps 3 \
  : -n 1 "$native/bench/coherence" --units 16 --reps 3 > "$out/coherence_mixed.csv"
echo "== coherence, arm64 rank 0 against an x86-64 home ($out/coherence_mixed.csv)"
awk -F, 'NR == 1 || $2 != "sweep_one_line" && $2 != "sweep_all_lines"' "$out/coherence_mixed.csv" | column -t -s,

best() {  # best "Time in seconds" of $reps runs of a job
  local best=""
  for _ in $(seq "$reps"); do
    t=$("$@" 2>/dev/null | awk '/Time in seconds/ {print $5}')
    [ -n "$t" ] || { echo "run_mixed: $* did not report a time" >&2; exit 1; }
    best=$(awk -v a="$best" -v b="$t" 'BEGIN {print (a == "" || b < a) ? b : a}')
  done
  echo "$best"
}
x86=$(best "$native/tools/dsmrun" --transport shm -n 2 "$native/examples/cg" --class S)
mixed=$(best "$native/tools/dsmrun" --transport shm -n 1 "$native/examples/cg" --class S \
  : -n 1 "${qemu[@]}" "$arm/examples/cg" --class S)
{
  echo "job,seconds,ratio_to_x86"
  echo "2 x86-64,$x86,1"
  echo "1 x86-64 + 1 arm64 (qemu),$mixed,$(awk -v a="$mixed" -v b="$x86" 'BEGIN {printf "%.2f", a / b}')"
} > "$out/cg_mixed.csv"
echo "== NPB CG class S, best of $reps ($out/cg_mixed.csv)"
column -t -s, "$out/cg_mixed.csv"
