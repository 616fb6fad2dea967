#!/usr/bin/env python3
"""bench/npb/run.py: the NPB kernels on dsm against their plain single-process
builds, and under each sensible policy, measured in this one run.

  bench/npb/run.py [--build build] [--class A] [--reps 3] [--out DIR] [--no-plot]
                   [--transport shm|tcp] [--policy-ranks 2[,3,...]] [--kernels ep,is,cg,mg,ft]
  bench/npb/run.py --reference NPB3.4-MPI-DIR [--ranks 1,2,4] [--reps 5] [--class A] ...

Writes into DIR (default BUILD/bench-results):
  npb_times.csv     kernel, build (plain | dsm), ranks, policy, best seconds
                    of --reps runs, Mop/s, ratio to plain, speedup over 1 rank
  npb_policies.csv  each kernel on 2 ranks (or each of --policy-ranks) under
                    each policy it accepts over --transport (best
                    of --reps, the policies taking turns; ratio to direct), with
                    DSM_STATS counters summed over ranks and arrays (misses,
                    copies dropped, diffs and their bytes, gets and their
                    bytes, active messages, barriers and time in them)
  npb_times.png, npb_policies.png  (matplotlib; --no-plot skips them)
and prints both tables. A failed verification anywhere is an error.

With --reference, instead: each kernel beside NPB 3.4-MPI's own build of
it, interleaved, at each of --ranks (bench/npb/reference.py says how), into
  npb_reference.csv  kernel, class, ranks, medians, their ratio, min and max
  npb_reference.png  the ratios per kernel and rank count
"""
import argparse
import csv
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import plotting  # noqa: E402  (bench/plotting.py)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference  # noqa: E402  (bench/npb/reference.py)

KERNELS = {  # policies each kernel accepts, its default first
    "ep": ["reduction", "read_only", "single_writer", "write_shared", "direct"],
    "is": ["direct", "single_writer", "write_shared"],
    "cg": ["direct", "producer_consumer", "reduction", "single_writer", "write_shared"],
    "mg": ["direct", "producer_consumer", "single_writer", "write_shared"],
    "ft": ["direct", "write_shared", "single_writer"],
}
ARRAY_COUNTERS = {  # per-array DSM_STATS fields
    "misses": r"misses (\d+)",
    "copies_dropped": r"copies dropped (\d+)",
    "diffs": r"diffs (\d+) \(",
    "diff_bytes": r"diffs \d+ \((\d+) B\)",
    "ownership_transfers": r"ownership transfers (\d+)",
    "contribution_bytes": r"contributions \d+ \((\d+) B\)",
    "combines": r"combines (\d+)",
    "update_bytes": r"updates \d+ \((\d+) B\)",
}
RANK_COUNTERS = {  # per-rank DSM_STATS fields
    "gets": r"gets (\d+) \(",
    "get_bytes": r"gets \d+ \((\d+) B\)",
    "active_messages": r"active messages sent (\d+)",
    "barriers": r"barriers (\d+) \(",
}


def run(command, env=None):
    result = subprocess.run(command, capture_output=True, text=True, timeout=1800,
                            env={**os.environ, **(env or {})})
    if result.returncode != 0 or "Verification    =               SUCCESSFUL" not in result.stdout:
        sys.exit(f"npb bench: {' '.join(command)} failed (exit {result.returncode}):\n"
                 f"{result.stdout[-2000:]}{result.stderr[-2000:]}")
    seconds = float(re.search(r"Time in seconds =\s+([0-9.]+)", result.stdout).group(1))
    mops = float(re.search(r"Mop/s total\s+=\s+([0-9.]+)", result.stdout).group(1))
    return seconds, mops, result.stderr


def best_of(reps, command, env=None):
    return min((run(command, env)[:2] for _ in range(reps)), key=lambda r: r[0])


def stats_of(stderr):
    totals = {name: 0 for name in [*ARRAY_COUNTERS, *RANK_COUNTERS, "barrier_seconds"]}
    for line in stderr.splitlines():
        if not line.startswith("dsm stats rank"):
            continue
        counters = ARRAY_COUNTERS if "shared_array<" in line else RANK_COUNTERS
        for name, pattern in counters.items():
            found = re.search(pattern, line)
            if found:
                totals[name] += int(found.group(1))
        found = re.search(r"barriers \d+ \(([0-9.e-]+) s\)", line)
        if found:  # the slowest rank's time in barriers
            totals["barrier_seconds"] = max(totals["barrier_seconds"], float(found.group(1)))
    return totals


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def print_table(rows):
    columns = list(rows[0])
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in columns]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for r in rows:
        print("  ".join(str(r[c]).ljust(w) for c, w in zip(columns, widths)))


def plot(times, policies, out):
    plt = plotting.pyplot()

    kernels = list(dict.fromkeys(r["kernel"] for r in times))
    fig, ax = plt.subplots(figsize=(7, 4))
    series = [("plain", 1), ("dsm", 1), ("dsm", 2)]
    for i, (build, ranks) in enumerate(series):
        values = [next(r["seconds"] for r in times if r["kernel"] == k and r["build"] == build and r["ranks"] == ranks)
                  for k in kernels]
        ax.bar([x + (i - 1) * 0.27 for x in range(len(kernels))], values, 0.27,
               label=f"{build}, {ranks} rank{'s' if ranks > 1 else ''}")
    plotting.finish_kernel_bars(fig, ax, kernels, "seconds (best of runs)",
                                f"NPB class {times[0]['class']}: dsm against the plain build",
                                os.path.join(out, "npb_times.png"))

    fig, axes = plt.subplots(1, len(kernels), figsize=(12, 3.6), squeeze=False)
    for ax, k in zip(axes[0], kernels):
        rows = [r for r in policies if r["kernel"] == k]
        ax.bar([f"{r['policy']} ({r['ranks']})" for r in rows], [r["seconds"] for r in rows])
        for x, r in enumerate(rows):
            ax.annotate(f"{r['misses']} misses", (x, r["seconds"]), ha="center", va="bottom", fontsize=7)
        ax.set_title(k.upper())
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    axes[0][0].set_ylabel(f"seconds (ranks), {policies[0]['transport']}")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "npb_policies.png"), dpi=120)


def main():
    plotting.run_where_matplotlib_is()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default="build")
    parser.add_argument("--class", dest="problem_class", default="A", choices="SWABC")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--csv", action="store_true", help="print the times CSV to stdout instead of the tables")
    parser.add_argument("--transport", choices=["shm", "tcp"], default="shm")
    parser.add_argument("--policy-ranks", default="2", help="rank counts of the policy table, comma-separated")
    parser.add_argument("--kernels", default=",".join(KERNELS), help="which kernels, comma-separated")
    parser.add_argument("--reference", metavar="DIR", help="an NPB 3.4-MPI tree: run beside its kernels instead")
    parser.add_argument("--ranks", default="1,2,4", help="rank counts of the --reference runs, comma-separated")
    a = parser.parse_args()
    kernels = {k: KERNELS[k] for k in a.kernels.split(",") if k}
    if any(k not in KERNELS for k in a.kernels.split(",") if k):
        parser.error(f"--kernels: expected some of {','.join(KERNELS)}")
    if not a.no_plot:
        try:  # before the runs, not after them
            plotting.pyplot()
        except ImportError:
            parser.error("plots need matplotlib (scripts/install-deps --bench), or pass --no-plot")
    policy_ranks = [int(n) for n in a.policy_ranks.split(",")]
    out = a.out or os.path.join(a.build, "bench-results")
    os.makedirs(out, exist_ok=True)
    dsmrun = [os.path.join(a.build, "tools", "dsmrun"), "--transport", a.transport]
    if a.transport == "tcp":
        os.environ["UCX_NET_DEVICES"] = "lo"  # or UCX opens a lane on the external interface too
    if a.reference:
        rows = reference.side_by_side(a, run, dsmrun, list(kernels))
        if not rows:
            sys.exit("npb bench: no kernel and rank count to compare")
        write_csv(os.path.join(out, "npb_reference.csv"), rows)
        if not a.no_plot:
            reference.plot(plotting.pyplot(), plotting.finish_kernel_bars, rows, out)
        print(f"== NPB class {a.problem_class}: dsm against NPB 3.4-MPI (medians of {a.reps} interleaved runs each)")
        print_table(rows)
        print(f"\nwritten: {out}/npb_reference.csv" + ("" if a.no_plot else ", npb_reference.png"))
        return
    plain = os.path.join(a.build, "bench", "npb-plain")
    cls = ["--class", a.problem_class]

    times = []
    for k in kernels:
        seconds, mops = best_of(a.reps, [plain, k, *cls])
        times.append({"kernel": k, "class": a.problem_class, "build": "plain", "ranks": 1, "policy": "plain",
                      "seconds": seconds, "mops": mops})
        for ranks in (1, 2):
            seconds, mops = best_of(a.reps, [*dsmrun, "-n", str(ranks), os.path.join(a.build, "examples", k), *cls])
            times.append({"kernel": k, "class": a.problem_class, "build": "dsm", "ranks": ranks,
                          "policy": KERNELS[k][0], "seconds": seconds, "mops": mops})
    for r in times:
        same = {x["ranks"]: x["seconds"] for x in times if x["kernel"] == r["kernel"] and x["build"] == "dsm"}
        base = next(x["seconds"] for x in times if x["kernel"] == r["kernel"] and x["build"] == "plain")
        r["ratio_to_plain"] = round(r["seconds"] / base, 3)
        r["speedup_over_1_rank"] = round(same[1] / r["seconds"], 3) if r["build"] == "dsm" else ""

    # Each kernel's policies take turns, --reps rounds, so that a slow
    # moment of the machine hits them alike; best of the rounds, with the
    # counters of that run, and the ratio to direct's best.
    policies = []
    for ranks in policy_ranks:
        for k, names in kernels.items():
            best = {}
            for _ in range(a.reps):
                for policy in names:
                    command = [*dsmrun, "-n", str(ranks), os.path.join(a.build, "examples", k), *cls, "--policy", policy]
                    seconds, mops, stderr = run(command, {"DSM_STATS": "1"})
                    if policy not in best or seconds < best[policy][0]:
                        best[policy] = (seconds, stderr)
            for policy in names:
                seconds, stderr = best[policy]
                policies.append({"kernel": k, "class": a.problem_class, "transport": a.transport, "ranks": ranks,
                                 "policy": policy, "seconds": seconds,
                                 "ratio_to_direct": round(seconds / best["direct"][0], 3), **stats_of(stderr)})

    write_csv(os.path.join(out, "npb_times.csv"), times)
    write_csv(os.path.join(out, "npb_policies.csv"), policies)
    if not a.no_plot:
        plot(times, policies, out)
    if a.csv:
        with open(os.path.join(out, "npb_times.csv")) as f:
            sys.stdout.write(f.read())
        return
    print(f"== NPB class {a.problem_class}: dsm against the plain build (best of {a.reps})")
    print_table(times)
    print(f"\n== policies over {a.transport} (best of {a.reps}, taking turns; DSM_STATS of that run, summed over ranks and arrays)")
    print_table(policies)
    print(f"\nwritten: {out}/npb_times.csv, npb_policies.csv" + ("" if a.no_plot else ", npb_times.png, npb_policies.png"))


if __name__ == "__main__":
    main()
