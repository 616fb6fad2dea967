#!/usr/bin/env python3
"""check_bench_csv.py PROGRAM ARGS...: runs a bench and checks that it printed
well-formed CSV: a header, at least one row, every row as wide as the header,
every numeric column a finite non-negative number."""
import csv
import io
import math
import os
import shlex
import subprocess
import sys

# A cross-built bench runs through the wrapper meson names (qemu).
wrapper = shlex.split(os.environ.get("MESON_EXE_WRAPPER", ""))
run = subprocess.run(wrapper + sys.argv[1:], capture_output=True, text=True, timeout=280)
sys.stderr.write(run.stderr)
if run.returncode != 0:
    sys.exit(f"FAIL: {sys.argv[1]} exited {run.returncode}")
rows = list(csv.reader(io.StringIO(run.stdout)))
if len(rows) < 2:
    sys.exit("FAIL: no data rows")
header = rows[0]
for r in rows[1:]:
    if len(r) != len(header):
        sys.exit(f"FAIL: row {r} has {len(r)} fields, header has {len(header)}")
    for name, value in zip(header, r):
        try:
            x = float(value)
        except ValueError:
            continue
        if not math.isfinite(x) or x < 0:
            sys.exit(f"FAIL: {name}={value} in {r}")
print(f"ok: {len(rows) - 1} rows of {','.join(header)}")
print(run.stdout)
