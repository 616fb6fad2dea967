#!/usr/bin/env bash
# check_disassembly.sh OBJDUMP BINARY MODE
# Proves which cache maintenance instructions a binary really contains.
#   arm64       dc cvac and dc civac present, dc ivac absent (it traps at EL0)
#   x86-forced  clwb, clflushopt and clflush all present
#   x86-off     none of them: maintenance compiled away
set -u
objdump=$1 binary=$2 mode=$3
asm=$("$objdump" -d --no-show-raw-insn "$binary") || { echo "FAIL: $objdump could not read $binary"; exit 1; }
count() { grep -cE "[[:space:]]$1([[:space:]]|$)" <<<"$asm"; }
status=0
need() { local n; n=$(count "$1"); if [ "$n" -eq 0 ]; then echo "FAIL: no '$1' in $binary"; status=1; else echo "ok: $n x '$1'"; fi; }
forbid() { local n; n=$(count "$1"); if [ "$n" -ne 0 ]; then echo "FAIL: $n x '$1' in $binary"; status=1; else echo "ok: no '$1'"; fi; }
case $mode in
  arm64) need 'dc[[:space:]]+cvac,'; need 'dc[[:space:]]+civac,'; forbid 'dc[[:space:]]+ivac,'; need 'mrs[[:space:]]+x[0-9]+,[[:space:]]*ctr_el0' ;;
  x86-forced) need 'clwb'; need 'clflushopt'; need 'clflush' ;;
  x86-off) forbid 'clwb'; forbid 'clflushopt'; forbid 'clflush' ;;
  *) echo "unknown mode $mode"; exit 2 ;;
esac
exit $status
