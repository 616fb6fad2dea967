#!/usr/bin/env python3
"""check_dsmrun_docs.py DSMRUN MANPAGE VERSION

dsmrun --help must list every option the parser takes and every
environment variable, and dsmrun(1) must describe each one --help lists;
--version must print the project's version.
"""
import re
import subprocess
import sys

dsmrun, manpage, version = sys.argv[1:4]
failures = []

helped = subprocess.run([dsmrun, "--help"], capture_output=True, text=True, timeout=30)
if helped.returncode != 0 or not helped.stdout.startswith("usage: dsmrun"):
    failures.append(f"--help: exit {helped.returncode}, output {helped.stdout[:80]!r}")
options_part, _, env_part = helped.stdout.partition("Environment")
options = set(re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", options_part))
variables = set(re.findall(r"\b((?:DSM|UCX)_[A-Z_]+|TMPDIR)\b", env_part))

# What the parser accepts (tools/dsmrun.cpp), which --help must list.
for expected in ["-n", "-np", "--np", "--transport", "--timeout", "--tag-output", "-h", "--help", "-V", "--version"]:
    if expected not in options:
        failures.append(f"--help does not list {expected}")
for expected in ["DSM_TIMEOUT", "DSM_PROGRESS", "DSM_STATS", "DSM_CHECK_RACES", "DSM_MAX_SEGMENT_BYTES", "DSM_HOST_TIMEOUT",
                 "DSM_SHM_DIR", "TMPDIR", "UCX_TLS", "UCX_NET_DEVICES"]:
    if expected not in variables:
        failures.append(f"--help does not list {expected}")

man = open(manpage, encoding="utf-8").read().replace("\\-", "-")
for name in sorted(options | variables):
    if not re.search(r"(?<![\w-])" + re.escape(name) + r"(?![\w-])", man):
        failures.append(f"dsmrun(1) does not describe {name}")

shown = subprocess.run([dsmrun, "--version"], capture_output=True, text=True, timeout=30)
if shown.returncode != 0 or shown.stdout.strip() != f"dsmrun (dsm) {version}":
    failures.append(f"--version printed {shown.stdout.strip()!r} (exit {shown.returncode}), expected 'dsmrun (dsm) {version}'")

for f in failures:
    print("FAIL:", f)
print(f"{len(options)} options and {len(variables)} environment variables checked")
sys.exit(1 if failures else 0)
