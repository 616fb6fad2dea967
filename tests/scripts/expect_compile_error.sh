#!/usr/bin/env bash
# expect_compile_error.sh SOURCE EXPECTED -- COMPILER ARGS...
# Passes when compiling SOURCE fails and the diagnostics contain EXPECTED.
set -u
source=$1 expected=$2
shift 3
out=$("$@" -fsyntax-only "$source" 2>&1)
if [ $? -eq 0 ]; then
  echo "FAIL: $source compiled, but must not"
  exit 1
fi
if ! grep -qF -- "$expected" <<<"$out"; then
  echo "FAIL: $source failed to compile without the expected message '$expected':"
  echo "$out" | head -40
  exit 1
fi
echo "ok: $source is rejected with '$expected'"
