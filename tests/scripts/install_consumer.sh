#!/usr/bin/env bash
# install_consumer.sh MESON SOURCE_ROOT
# Installs dsm into a temporary prefix, then configures, builds and runs
# tests/consumer against it through pkg-config alone.
set -eu
meson=$1 src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$meson" setup "$work/dsm-build" "$src" --prefix "$work/prefix" --libdir lib \
  -Dtests=false -Dexamples=false -Dbench=false >"$work/setup.log" 2>&1 || { cat "$work/setup.log"; exit 1; }
"$meson" install -C "$work/dsm-build" >"$work/install.log" 2>&1 || { cat "$work/install.log"; exit 1; }
test -f "$work/prefix/include/dsm/dsm.hpp" || { echo "FAIL: dsm.hpp not installed"; exit 1; }
test -f "$work/prefix/include/dsm/config.hpp" || { echo "FAIL: config.hpp not installed"; exit 1; }
test -f "$work/prefix/lib/pkgconfig/dsm.pc" || { echo "FAIL: dsm.pc not installed"; exit 1; }
# dsmrun is built where UCX is; its man page comes with it.
if [ -x "$work/prefix/bin/dsmrun" ]; then
  test -f "$work/prefix/share/man/man1/dsmrun.1" || { echo "FAIL: dsmrun(1) not installed"; exit 1; }
fi
if find "$work/prefix/include" -name meson.build -o -name '*.in' | grep -q .; then
  echo "FAIL: build files installed among the headers"; exit 1
fi
export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig"
"$meson" setup "$work/consumer-build" "$src/tests/consumer" >"$work/c-setup.log" 2>&1 || { cat "$work/c-setup.log"; exit 1; }
"$meson" compile -C "$work/consumer-build" >"$work/c-build.log" 2>&1 || { cat "$work/c-build.log"; exit 1; }
out=$("$work/consumer-build/consumer")
echo "$out"
grep -q '^consumer: gptr<int>{unit 1, seg 2, gen 3, +0x8}$' <<<"$out" || { echo "FAIL: unexpected consumer output"; exit 1; }
