#!/usr/bin/env python3
"""expect_run.py [--exit CODE|nonzero] [--within SECONDS [--from RE]] [--stdout RE]...
[--stderr RE]... [--signal-after SECONDS SIGNAL] [--env NAME=VALUE]... -- COMMAND...

Runs COMMAND and checks how it ended: its exit code, that it ended within
the time bound, and that its output matches every regular expression.
With --from, the bound counts from the first output line (stdout or
stderr) matching RE rather than from the start: a test of how fast a job
ends after an event then does not also time the job's start-up, which a
loaded machine can stall for seconds."""
import argparse
import os
import re
import signal
import subprocess
import sys
import threading
import time

p = argparse.ArgumentParser()
p.add_argument("--exit", default="0")
p.add_argument("--within", type=float, default=120)
p.add_argument("--from", dest="from_line", metavar="RE")
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
captured = {"out": [], "err": []}
marked = []  # when a line first matched --from


def collect(stream, lines):
    for line in stream:
        if a.from_line and not marked and re.search(a.from_line, line):
            marked.append(time.monotonic())
        lines.append(line)


readers = [threading.Thread(target=collect, args=(proc.stdout, captured["out"])),
           threading.Thread(target=collect, args=(proc.stderr, captured["err"]))]
for r in readers:
    r.start()
if a.signal_after:
    time.sleep(float(a.signal_after[0]))
    proc.send_signal(getattr(signal, a.signal_after[1]))
try:
    proc.wait(timeout=a.within + 30)
except subprocess.TimeoutExpired:
    proc.kill()
    proc.wait()
    for r in readers:
        r.join()
    sys.exit(f"FAIL: still running after {a.within + 30:.0f} s\n{''.join(captured['out'])}\n{''.join(captured['err'])}")
ended = time.monotonic()
for r in readers:
    r.join()
out, err = "".join(captured["out"]), "".join(captured["err"])
elapsed = ended - (marked[0] if marked else start)
print(out)
print(err, file=sys.stderr)
problems = []
if a.exit == "nonzero":
    if proc.returncode == 0:
        problems.append("exit code 0, expected non-zero")
elif proc.returncode != int(a.exit):
    problems.append(f"exit code {proc.returncode}, expected {a.exit}")
if a.from_line and not marked:
    problems.append(f"no output line matched --from /{a.from_line}/")
elif elapsed > a.within:
    since = f" after /{a.from_line}/" if a.from_line else ""
    problems.append(f"took {elapsed:.1f} s{since}, bound {a.within} s")
for rx in a.stdout:
    if not re.search(rx, out, re.M):
        problems.append(f"stdout lacks /{rx}/")
for rx in a.stderr:
    if not re.search(rx, err, re.M):
        problems.append(f"stderr lacks /{rx}/")
if problems:
    sys.exit("FAIL: " + "; ".join(problems))
print(f"ok: exit {proc.returncode} after {elapsed:.1f} s" + (f" from /{a.from_line}/" if a.from_line else ""))
