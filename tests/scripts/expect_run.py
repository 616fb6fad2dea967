#!/usr/bin/env python3
"""expect_run.py [--exit CODE|nonzero] [--within SECONDS [--from RE]] [--stdout RE]...
[--stderr RE]... [--signal-after SECONDS SIGNAL] [--kill-after SECONDS] [--clean]
[--sequence FORMAT COUNT]... [--env NAME=VALUE]... -- COMMAND...

Runs COMMAND and checks how it ended: its exit code, that it ended within
the time bound, and that its output matches every regular expression.
With --from, the bound counts from the first output line (stdout or
stderr) matching RE rather than from the start: a test of how fast a job
ends after an event then does not also time the job's start-up, which a
loaded machine can stall for seconds. With --until, it ends at the last
output line matching RE (under a launcher whose own teardown is not what
is timed).

--clean runs the command with a private TMPDIR and DSM_SHM_DIR (under
/tmp and /dev/shm) and a marker in its environment, and checks afterwards
that both directories are empty and that no process carrying the marker
is left. --kill-after SIGKILLs the command itself (the launcher) after
SECONDS; the bound then counts from the kill to the moment no process of
the job is left. --sequence checks that stdout has the lines FORMAT % 0 ..
FORMAT % (COUNT - 1) ({} is the number), each once, in order."""
import argparse
import os
import re
import shutil
import tempfile
import uuid
import signal
import subprocess
import sys
import threading
import time

p = argparse.ArgumentParser()
p.add_argument("--exit", default="0")
p.add_argument("--within", type=float, default=120)
p.add_argument("--from", dest="from_line", metavar="RE")
p.add_argument("--until", dest="until_line", metavar="RE")
p.add_argument("--stdout", action="append", default=[])
p.add_argument("--stderr", action="append", default=[])
p.add_argument("--signal-after", nargs=2, metavar=("SECONDS", "SIGNAL"))
p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
p.add_argument("--kill-after", type=float)
p.add_argument("--clean", action="store_true")
p.add_argument("--sequence", nargs=2, action="append", default=[], metavar=("FORMAT", "COUNT"))
p.add_argument("command", nargs=argparse.REMAINDER)
a = p.parse_args()
cmd = a.command[1:] if a.command and a.command[0] == "--" else a.command

env = dict(os.environ)
for assignment in a.env:
    name, _, value = assignment.partition("=")
    env[name] = value
marker = f"DSM_TEST_MARK={uuid.uuid4().hex}"
private_dirs = []
if a.clean or a.kill_after is not None:
    private_dirs = [tempfile.mkdtemp(prefix="expect_run.", dir="/tmp"),
                    tempfile.mkdtemp(prefix="expect_run.", dir="/dev/shm")]
    env["TMPDIR"], env["DSM_SHM_DIR"] = private_dirs
    env["DSM_TEST_MARK"] = marker.partition("=")[2]


def marked_processes():
    """Processes whose environment carries this run's marker."""
    found = []
    needle = marker.encode()
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if needle in f.read().split(b"\0"):
                    found.append(int(pid))
        except OSError:
            pass
    return found


start = time.monotonic()
proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
captured = {"out": [], "err": []}
marked = []  # when a line first matched --from
last_until = []  # when a line last matched --until


def collect(stream, lines):
    for line in stream:
        if a.from_line and not marked and re.search(a.from_line, line):
            marked.append(time.monotonic())
        if a.until_line and re.search(a.until_line, line):
            last_until.append(time.monotonic())
        lines.append(line)


readers = [threading.Thread(target=collect, args=(proc.stdout, captured["out"])),
           threading.Thread(target=collect, args=(proc.stderr, captured["err"]))]
for r in readers:
    r.start()
if a.signal_after:
    time.sleep(float(a.signal_after[0]))
    proc.send_signal(getattr(signal, a.signal_after[1]))
killed_at = None
if a.kill_after is not None:
    time.sleep(a.kill_after)
    killed_at = time.monotonic()
    proc.kill()
try:
    proc.wait(timeout=a.within + 30)
except subprocess.TimeoutExpired:
    proc.kill()
    proc.wait()
    for r in readers:
        r.join()
    sys.exit(f"FAIL: still running after {a.within + 30:.0f} s\n{''.join(captured['out'])}\n{''.join(captured['err'])}")
ended = time.monotonic()
left = []
if killed_at is not None or a.clean:
    # The job's processes end after the launcher does: wait for them
    # (bounded), the time counted for --kill-after.
    give_up = time.monotonic() + a.within + 5
    while (left := marked_processes()) and time.monotonic() < give_up:
        time.sleep(0.05)
    if killed_at is not None:
        ended = time.monotonic()
for pid in left:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
for r in readers:
    r.join()
out, err = "".join(captured["out"]), "".join(captured["err"])
if a.until_line and last_until:
    ended = last_until[-1]
elapsed = ended - (killed_at if killed_at is not None else marked[0] if marked else start)
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
elif a.until_line and not last_until:
    problems.append(f"no output line matched --until /{a.until_line}/")
elif elapsed > a.within:
    since = f" after /{a.from_line}/" if a.from_line else ""
    problems.append(f"took {elapsed:.1f} s{since}, bound {a.within} s")
for rx in a.stdout:
    if not re.search(rx, out, re.M):
        problems.append(f"stdout lacks /{rx}/")
for rx in a.stderr:
    if not re.search(rx, err, re.M):
        problems.append(f"stderr lacks /{rx}/")
for fmt, count in a.sequence:
    lines = out.splitlines()
    wanted = [fmt.replace("{}", str(i)) for i in range(int(count))]
    got = [line for line in lines if line in set(wanted)]
    if got != wanted:
        missing = [w for w in wanted if w not in got]
        problems.append(f"stdout has {len(got)} of the {count} lines '{fmt}'" +
                        (f" (first missing: '{missing[0]}')" if missing else " (out of order or repeated)"))
if left:
    problems.append(f"{len(left)} process(es) of the job left running: {left}")
for d in private_dirs:
    leftovers = os.listdir(d)
    if leftovers:
        problems.append(f"{d} not empty after the job: {leftovers}")
    shutil.rmtree(d, ignore_errors=True)
if problems:
    sys.exit("FAIL: " + "; ".join(problems))
print(f"ok: exit {proc.returncode} after {elapsed:.1f} s" + (f" from /{a.from_line}/" if a.from_line else ""))
