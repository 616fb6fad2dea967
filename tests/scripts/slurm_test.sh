#!/usr/bin/env bash
# slurm_test.sh SOURCE_ROOT BUILD_ROOT
# A single-node Slurm (scripts/slurm, MpiDefault=pmix): the binaries dsmrun
# runs, unchanged, under srun: NPB CG and IS class S verified on 4 ranks,
# the rma and coherence litmus programs joining through PMIx, a rank killed
# mid-job named by the others within 5 s; `down` leaves nothing behind.
set -uo pipefail
src=$1 build=$2
slurm="$src/scripts/slurm"
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (Slurm's daemons)"; exit 77; }
for p in slurmd slurmctld srun munged; do
  command -v "$p" >/dev/null || { echo "SKIP: no $p (scripts/install-deps installs Slurm)"; exit 77; }
done
fail() { echo "FAIL: $*"; "$slurm" down; exit 1; }
trap '"$slurm" down' EXIT

"$slurm" up 4 >/dev/null || fail "slurm up 4"
eval "$("$slurm" env)"
[ "$(timeout 60 srun -n 4 hostname 2>&1 | wc -l)" = 4 ] || fail "srun -n 4 hostname did not run 4 tasks"

run() { timeout 120 env DSM_TIMEOUT=60 srun "$@" 2>&1; }
for kernel in cg is; do
  out=$(run --mpi=pmix -n 4 "$build/examples/$kernel" --class S)
  grep -Eq 'Verification += +SUCCESSFUL' <<<"$out" || { echo "$out" | tail -20; fail "NPB $kernel class S under srun --mpi=pmix -n 4"; }
  grep -Eq 'Total ranks += +4' <<<"$out" || fail "NPB $kernel did not run on 4 ranks: $out"
  echo "$kernel class S verified under srun --mpi=pmix -n 4"
done
# MpiDefault=pmix: a plain srun bootstraps through PMIx as well.
for case in "rma_test" "coherence_test single_writer" "coherence_test write_shared"; do
  read -r program argument <<<"$case"
  # shellcheck disable=SC2086
  out=$(run -n 4 "$build/tests/ranks/$program" $argument)
  grep -Eq "passed on 4 rank\(s\) via pmix, 0 failed check\(s\)" <<<"$out" || { echo "$out" | tail -20; fail "$case under srun -n 4"; }
  echo "$case passed under srun -n 4"
done

# A rank killed mid-job: the others name it and the step ends within 5 s.
t0=$(date +%s.%N)
out=$(run -n 3 "$build/tests/ranks/launcher_probe" kill 1 KILL)
t1=$(date +%s.%N)
grep -Eq '^rank [02]: peer failure: rank 1 is unreachable' <<<"$out" || fail "a killed rank was not named: $out"
awk -v t0="$t0" -v t1="$t1" 'BEGIN { exit !(t1 - t0 <= 5) }' ||
  fail "the step took $(awk -v t0="$t0" -v t1="$t1" 'BEGIN { print t1 - t0 }') s to end after a rank was killed: $out"
echo "a killed rank was named; the step ended in $(awk -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.1f", t1 - t0 }') s"

"$slurm" down || fail "slurm down"
trap - EXIT
[ ! -e /run/dsm-slurm ] || fail "/run/dsm-slurm left"
if pgrep -f '/run/dsm-slurm' >/dev/null; then fail "daemons left: $(pgrep -af /run/dsm-slurm)"; fi
"$slurm" down || fail "slurm down when there is none"
echo "ok"
