#!/usr/bin/env python3
"""Runs bench/coherence on 2 ranks over shared memory and over TCP and
writes, into OUT (default BUILD/bench-results):

  coherence_shm.csv, coherence_tcp.csv  bench/coherence's CSV, one run each
  coherence.png                         every ratio of the headline measures
                                        (1 KiB units), per policy, both
                                        transports (matplotlib; --no-plot
                                        skips it)

and prints the headline rows: hit read and write, the span paths, the read
miss (home waiting and home computing), readahead, against the targets of
issue 13. Figures are ratios measured in one run against a baseline of the
same run.

  bench/run_coherence.py [--build DIR] [--out DIR] [--reps N] [--no-plot]
"""
import argparse
import csv
import os
import subprocess
import sys

import plotting  # bench/plotting.py, beside this script

HEADLINE = [  # measure, target ratio (None: reported only)
    ("hit_read", 2.0),
    ("span_read", None),
    ("hit_write", 3.0),
    ("span_write", None),
    ("hit_read_cyclic", 3.0),
    ("hit_write_cyclic", 3.0),
    ("hit_read_block_cyclic", 3.0),
    ("hit_write_block_cyclic", 3.0),
    ("miss", 2.0),
    ("miss_home_computing", 2.0),
    ("miss_readahead", None),
    ("write_miss", None),
]


def run(build, transport, reps):
    env = dict(os.environ)
    if transport == "tcp":
        env["UCX_NET_DEVICES"] = "lo"  # else UCX also opens a lane on the external interface
    cmd = [os.path.join(build, "tools", "dsmrun"), "--transport", transport, "--timeout", "1800", "-n", "2",
           os.path.join(build, "bench", "coherence"), "--reps", str(reps), "--max-unit", "65536"]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    rows = list(csv.DictReader(out.splitlines()))
    if not rows:
        sys.exit(f"bench/coherence printed no rows over {transport}")
    return out, rows


def headline(rows):
    picked = []
    for measure, target in HEADLINE:
        for r in rows:
            if r["measure"] == measure and r["unit_bytes"] == "1024":
                picked.append((r, target))
    return picked


def plot(results, out):
    plt = plotting.pyplot()

    measures = [m for m, _ in HEADLINE]
    fig, axes = plt.subplots(1, len(results), figsize=(13, 4.2), sharey=True)
    for ax, (transport, rows) in zip(axes, results.items()):
        policies = sorted({r["policy"] for r in rows})
        width = 0.8 / len(policies)
        for i, policy in enumerate(policies):
            xs, ys = [], []
            for x, m in enumerate(measures):
                found = [r for r in rows if r["policy"] == policy and r["measure"] == m and r["unit_bytes"] == "1024"]
                if found:
                    xs.append(x + (i - (len(policies) - 1) / 2) * width)
                    ys.append(float(found[0]["ratio"]))
            ax.bar(xs, ys, width, label=policy)
        for x, (m, target) in enumerate(HEADLINE):
            if target is not None:
                ax.plot([x - 0.45, x + 0.45], [target, target], color="black", linewidth=1)
        ax.set_yscale("log")
        ax.set_xticks(range(len(measures)), measures, rotation=35, ha="right", fontsize=8)
        ax.set_title(f"over {transport} (black: issue 13's targets)")
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("ratio to its baseline, same run")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "coherence.png"), dpi=120)


def main():
    plotting.run_where_matplotlib_is()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default="build")
    p.add_argument("--out")
    p.add_argument("--reps", type=int, default=9)
    p.add_argument("--no-plot", action="store_true")
    a = p.parse_args()
    out = a.out or os.path.join(a.build, "bench-results")
    os.makedirs(out, exist_ok=True)
    results = {}
    for transport in ("shm", "tcp"):
        text, rows = run(a.build, transport, a.reps)
        with open(os.path.join(out, f"coherence_{transport}.csv"), "w") as f:
            f.write(text)
        results[transport] = rows
        print(f"== {transport} ({os.path.join(out, f'coherence_{transport}.csv')})")
        for r, target in headline(rows):
            verdict = "" if target is None else ("  within target" if float(r["ratio"]) <= target else
                                                 f"  above the {target}x target")
            print(f"{r['policy']:14} {r['measure']:20} {float(r['median_ns']):10.1f} ns  {r['baseline']:30} "
                  f"{float(r['baseline_ns']):10.1f} ns  {float(r['ratio']):6.2f}x{verdict}")
    if not a.no_plot:
        plot(results, out)
        print(f"plot: {os.path.join(out, 'coherence.png')}")


if __name__ == "__main__":
    main()
