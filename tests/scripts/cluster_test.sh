#!/usr/bin/env bash
# cluster_test.sh SOURCE_ROOT BUILD_ROOT
# Simulated hosts (scripts/cluster): two hosts are isolated as two machines
# are (hostname, /dev/shm, addresses only inside them), Open MPI launches
# across them through the cluster's rsh agent, NPB CG and IS class S verify
# and the rma/atomics/coherence litmus programs pass on 2 hosts x 2 ranks,
# and `down` leaves nothing behind.
set -uo pipefail
src=$1 build=$2
cluster="$src/scripts/cluster"
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (namespaces)"; exit 77; }
command -v mpirun >/dev/null || { echo "SKIP: no mpirun"; exit 77; }
fail() { echo "FAIL: $*"; "$cluster" down; exit 1; }
trap '"$cluster" down' EXIT

"$cluster" up 2 >/dev/null || fail "cluster up 2"
"$cluster" up 2 >/dev/null || fail "cluster up 2 again (idempotent)"
[ "$("$cluster" exec 1 hostname)" = dsm-host1 ] || fail "host 1 is not named dsm-host1"
[ "$("$cluster" exec 2 hostname)" = dsm-host2 ] || fail "host 2 is not named dsm-host2"
"$cluster" exec 1 sh -c 'echo one > /dev/shm/dsm-cluster-test' || fail "writing host 1's /dev/shm"
"$cluster" exec 1 test -f /dev/shm/dsm-cluster-test || fail "host 1 does not keep its /dev/shm between commands"
"$cluster" exec 2 test ! -e /dev/shm/dsm-cluster-test || fail "host 2 sees host 1's /dev/shm"
[ ! -e /dev/shm/dsm-cluster-test ] || fail "the machine sees host 1's /dev/shm"
if ip -o addr | grep -q '198\.18\.'; then fail "a cluster address exists outside the hosts"; fi
"$cluster" exec 1 timeout 5 bash -c 'echo >/dev/tcp/dsm-host2/9' 2>/dev/null
[ $? -ne 124 ] || fail "host 1 cannot reach dsm-host2 by name"

mpirun_on_hosts() {
  "$cluster" exec 1 env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
    timeout 120 mpirun --mca plm_rsh_agent "$cluster rsh" --mca oob_tcp_if_include eth0 \
    --mca btl_tcp_if_include eth0 -x UCX_NET_DEVICES=eth0 -x DSM_TIMEOUT=60 -H dsm-host1:2,dsm-host2:2 "$@"
}
hosts=$(mpirun_on_hosts hostname 2>&1 | sort | uniq -c | awk '{print $1 " " $2}' | tr '\n' ' ')
[ "$hosts" = "2 dsm-host1 2 dsm-host2 " ] || fail "mpirun -H dsm-host1:2,dsm-host2:2 ran on: $hosts"
for kernel in cg is; do
  out=$(mpirun_on_hosts "$build/examples/$kernel" --class S 2>&1)
  grep -Eq 'Verification += +SUCCESSFUL' <<<"$out" || { echo "$out" | tail -20; fail "NPB $kernel class S on 2 hosts x 2 ranks"; }
  grep -Eq 'Total ranks += +4' <<<"$out" || fail "NPB $kernel did not run on 4 ranks"
  echo "$kernel class S verified on 2 hosts x 2 ranks"
done

# The one-sided and coherence litmus programs, each rank pair of hosts
# crossing TCP and each pair within a host shared memory.
for case in "rma_test" "atomics_test" "coherence_test single_writer" "coherence_test write_shared" \
            "coherence_test read_only" "coherence_test migratory" "reduction_test litmus" "producer_consumer_test litmus"; do
  read -r program argument <<<"$case"
  # shellcheck disable=SC2086
  out=$(mpirun_on_hosts "$build/tests/ranks/$program" $argument 2>&1)
  grep -Eq "passed on 4 rank\(s\) via pmix, 0 failed check\(s\)" <<<"$out" || { echo "$out" | tail -20; fail "$case on 2 hosts x 2 ranks"; }
  echo "$case passed on 2 hosts x 2 ranks"
done

# A machine that fails mid-job: every rank says "waits", rank 3 (host 2)
# sleeps outside dsm and the others wait for it in a barrier; then host 2's
# link is cut, or its processes are killed. The job must end within 5 s,
# the ranks of host 1 naming the lost ranks (dsm's peer watch, or UCX for a
# closed connection). Open MPI's own daemon link is watched with keepalives
# of the same order (docs/launching.md: "A machine that fails mid-job").
stamp() { while IFS= read -r line; do echo "$(date +%s.%N) $line"; done; }
host_failure() {  # NAME ACTION...
  local name=$1 log="$build/cluster-$1.log" t0 t1 k
  shift
  "$cluster" up 2 >/dev/null || fail "cluster up 2 ($name)"
  { mpirun_on_hosts --mca oob_tcp_keepalive_time 1 --mca oob_tcp_keepalive_intvl 1 --mca oob_tcp_keepalive_probes 2 \
      "$build/tests/ranks/launcher_probe" hold 3 30 2>&1 | stamp >"$log"; } &
  local job=$!
  for ((k = 0; k < 300; ++k)); do
    [ "$(grep -c ' waits$' "$log" 2>/dev/null)" = 4 ] && break
    sleep 0.1
  done
  [ "$k" -lt 300 ] || { kill "$job"; fail "$name: the 4 ranks did not start within 30 s: $(cat "$log")"; }
  sleep 0.5
  t0=$(date +%s.%N)
  "$@"
  for ((k = 0; k < 200; ++k)); do
    kill -0 "$job" 2>/dev/null || break
    sleep 0.1
  done
  t1=$(date +%s.%N)
  # Open MPI's teardown may wait on the lost daemon after dsm's ranks ended
  # (its own keepalive): dsm's part is the ranks' end, checked below.
  if kill -0 "$job" 2>/dev/null; then
    echo "$name: mpirun still tearing down 20 s after; stopped"
    # This job's processes only: what runs on the two hosts, and mpirun
    # (a child of the job's subshell).
    { ip netns pids dsm-host1; ip netns pids dsm-host2; } 2>/dev/null | xargs -r kill -9 2>/dev/null
    pkill -9 -P "$job" 2>/dev/null
  fi
  wait "$job"
  local named
  named=$(grep -E 'rank [01]: peer failure: rank [23] (on dsm-host2 )?is (lost|unreachable)' "$log" | head -1)
  [ -n "$named" ] || fail "$name: no rank of host 1 named a lost rank of host 2: $(cat "$log")"
  if [ "$name" = "processes killed" ]; then
    awk -v t0="$t0" -v t1="$t1" 'BEGIN { exit !(t1 - t0 <= 5.5) }' ||
      fail "$name: the job took $(awk -v t0="$t0" -v t1="$t1" 'BEGIN { print t1 - t0 }') s to end: $(cat "$log")"
  fi
  # DSM_HOST_TIMEOUT (3 s) plus the keepalive's second, with room for a loaded machine.
  awk -v t0="$t0" '{ if ($1 - t0 > 8) exit 1 }' <<<"$named" || fail "$name: named the lost rank too late (t0 $t0): $named"
  echo "$name: ended in $(awk -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.1f", t1 - t0 }') s; ${named#* }"
}
host_failure "link cut" "$cluster" unplug 2
host_failure "processes killed" sh -c 'ip netns pids dsm-host2 | xargs -r kill -9'
grep -q 'is lost: its machine did not answer for 3 s' "$build/cluster-link cut.log" ||
  fail "link cut: the peer watch did not report it: $(cat "$build/cluster-link cut.log")"

# Two "machines" on one network that has loopback only, differing by
# their /dev/shm alone: the peer watch publishes 127.0.0.1 and each rank
# reaches the other's (with no address it would fail at start-up).
own_shm='mount -t tmpfs -o size=64m tmpfs /dev/shm && exec "$@"'
out=$(timeout 150 unshare --net sh -c 'ip link set lo up && exec "$@"' sh env UCX_NET_DEVICES=lo DSM_TIMEOUT=60 \
  "$build/tools/dsmrun" --transport tcp --timeout 120 \
  -n 1 unshare --mount sh -c "$own_shm" sh "$build/tests/ranks/launcher_probe" hosts \
  : -n 1 unshare --mount sh -c "$own_shm" sh "$build/tests/ranks/launcher_probe" hosts 2>&1)
rc=$?
[ "$rc" -eq 0 ] || fail "loopback-only machines: exit $rc: $out"
[ "$(grep -c '^rank [01] of 2: 1 rank(s) on this host$' <<<"$out")" = 2 ] ||
  fail "loopback-only machines: the ranks did not see two machines: $out"
echo "two loopback-only machines watched each other over 127.0.0.1"

"$cluster" down || fail "cluster down"
trap - EXIT
if ip netns list | grep -q '^dsm-'; then fail "network namespaces left: $(ip netns list | grep '^dsm-')"; fi
if grep -q dsm-cluster /proc/mounts; then fail "mounts left: $(grep dsm-cluster /proc/mounts)"; fi
[ ! -e /run/dsm-cluster ] || fail "/run/dsm-cluster left"
"$cluster" down || fail "cluster down when there is none"
echo "ok"
