#!/usr/bin/env python3
"""expect_run.py [--exit CODE|nonzero] [--within SECONDS] [--stdout RE]...
[--stderr RE]... [--signal-after SECONDS SIGNAL] [--env NAME=VALUE]... -- COMMAND...

Runs COMMAND and checks how it ended: its exit code, that it ended within
the time bound, and that its output matches every regular expression."""
import argparse
import os
import re
import signal
import subprocess
import sys
import time

p = argparse.ArgumentParser()
p.add_argument("--exit", default="0")
p.add_argument("--within", type=float, default=120)
p.add_argument("--stdout", action="append", default=[])
p.add_argument("--stderr", action="append", default=[])
p.add_argument("--signal-after", nargs=2, metavar=("SECONDS", "SIGNAL"))
p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
p.add_argument("command", nargs=argparse.REMAINDER)
a = p.parse_args()
cmd = a.command[1:] if a.command and a.command[0] == "--" else a.command

env = dict(os.environ)
for assignment in a.env:
    name, _, value = assignment.partition("=")
    env[name] = value
start = time.monotonic()
proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
if a.signal_after:
    time.sleep(float(a.signal_after[0]))
    proc.send_signal(getattr(signal, a.signal_after[1]))
try:
    out, err = proc.communicate(timeout=a.within + 30)
except subprocess.TimeoutExpired:
    proc.kill()
    out, err = proc.communicate()
    sys.exit(f"FAIL: still running after {a.within + 30:.0f} s\n{out}\n{err}")
elapsed = time.monotonic() - start
print(out)
print(err, file=sys.stderr)
problems = []
if a.exit == "nonzero":
    if proc.returncode == 0:
        problems.append("exit code 0, expected non-zero")
elif proc.returncode != int(a.exit):
    problems.append(f"exit code {proc.returncode}, expected {a.exit}")
if elapsed > a.within:
    problems.append(f"took {elapsed:.1f} s, bound {a.within} s")
for rx in a.stdout:
    if not re.search(rx, out, re.M):
        problems.append(f"stdout lacks /{rx}/")
for rx in a.stderr:
    if not re.search(rx, err, re.M):
        problems.append(f"stderr lacks /{rx}/")
if problems:
    sys.exit("FAIL: " + "; ".join(problems))
print(f"ok: exit {proc.returncode} after {elapsed:.1f} s")
