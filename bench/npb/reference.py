"""bench/npb/run.py --reference DIR: dsm's NPB kernels side by side with the
user's own NPB 3.4-MPI tree (never part of this repository), interleaved
run by run on this machine.

The reference kernels are built in DIR when DIR/bin/<kernel>.<class>.x is
missing: `make <kernel> CLASS=<class>` with NPB's own Makefiles and, if DIR
has no config/make.def, one made from NPB's template, with
-fallow-argument-mismatch added to FFLAGS for gfortran 10 and later (NPB's
Fortran passes one MPI buffer argument with several types). The build
needs mpif90 and mpicc (Debian: gfortran libopenmpi-dev).

Each (kernel, ranks) pair runs --reps times as dsm, MPI, dsm, MPI, ...;
the ratio is dsm's median over MPI's median. NPB prints its time with two
decimals, too coarse for IS's tenths of a second, so the medians are of
the equivalent time (the operation count over the printed Mop/s, which
has more digits; the count from dsm's four-decimal time); both print
NPB's Mop/s for the same operation count, which is checked.
"""
import os
import re
import shutil
import statistics
import subprocess
import sys

# NPB 3.4-MPI's CG, FT, IS and MG take power-of-two rank counts only.
ANY_RANKS = {"ep"}


def gfortran_major():
    try:
        out = subprocess.run(["gfortran", "-dumpversion"], capture_output=True, text=True, check=True).stdout
        return int(out.strip().split(".")[0])
    except (OSError, subprocess.CalledProcessError, ValueError):
        return 0


def ensure_built(reference, kernel, problem_class):
    binary = os.path.join(reference, "bin", f"{kernel}.{problem_class}.x")
    if os.path.exists(binary):
        return binary
    if not os.path.exists(os.path.join(reference, kernel.upper(), "Makefile")):
        sys.exit(f"npb bench: --reference {reference}: no {kernel.upper()}/Makefile there; "
                 "expected the NPB3.4-MPI directory of an NPB 3.4 tree")
    for tool in ("mpif90", "mpicc", "make"):
        if shutil.which(tool) is None:
            sys.exit(f"npb bench: building NPB's {kernel} needs {tool} (scripts/install-deps --bench installs "
                     "gfortran and libopenmpi-dev)")
    make_def = os.path.join(reference, "config", "make.def")
    if not os.path.exists(make_def):
        with open(os.path.join(reference, "config", "make.def.template")) as f:
            text = f.read()
        if gfortran_major() >= 10:
            text = re.sub(r"^(FFLAGS\s*=.*)$", r"\1 -fallow-argument-mismatch", text, count=1, flags=re.M)
        with open(make_def, "w") as f:
            f.write(text)
    os.makedirs(os.path.join(reference, "bin"), exist_ok=True)
    print(f"npb bench: building NPB's {kernel}.{problem_class} in {reference}", flush=True)
    result = subprocess.run(["make", kernel, f"CLASS={problem_class}"], cwd=reference, capture_output=True, text=True)
    if result.returncode != 0 or not os.path.exists(binary):
        sys.exit(f"npb bench: make {kernel} CLASS={problem_class} in {reference} failed:\n"
                 f"{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return binary


def mpirun_command(ranks):
    command = ["mpirun", "--oversubscribe", "--mca", "oob_tcp_if_include", "lo", "--mca", "btl_tcp_if_include", "lo"]
    if os.geteuid() == 0:
        command.append("--allow-run-as-root")
    return [*command, "-np", str(ranks)]


def side_by_side(a, run, dsmrun, kernels):
    """Returns the rows of npb_reference.csv. `run(command)` runs one
    verified benchmark and returns (seconds, Mop/s, stderr)."""
    reference = os.path.abspath(a.reference)
    ranks_list = [int(n) for n in a.ranks.split(",")]
    cls = ["--class", a.problem_class]
    binaries = {k: ensure_built(reference, k, a.problem_class) for k in kernels}
    rows = []
    for k in kernels:
        for ranks in ranks_list:
            if k not in ANY_RANKS and ranks & (ranks - 1):
                print(f"npb bench: NPB's {k} runs on powers of two only; {ranks} ranks left out", flush=True)
                continue
            dsm_command = [*dsmrun, "-n", str(ranks), os.path.join(a.build, "examples", k), *cls]
            mpi_command = [*mpirun_command(ranks), binaries[k]]
            samples = {"dsm": [], "mpi": []}
            for _ in range(a.reps):
                for side, command in (("dsm", dsm_command), ("mpi", mpi_command)):
                    seconds, mops, _ = run(command)
                    samples[side].append((seconds, mops))
            # The operation count each side reports (seconds x Mop/s): the
            # same kernel and class, so the same, up to NPB's printed time
            # (two decimals: 0.005 s x its Mop/s) and 2%.
            ops = {side: statistics.median(s * m for s, m in samples[side]) for side in samples}
            slack = 0.02 * ops["dsm"] + 0.005 * max(m for _, m in samples["mpi"])
            if abs(ops["dsm"] - ops["mpi"]) > slack:
                sys.exit(f"npb bench: {k} class {a.problem_class}: dsm reports {ops['dsm']:.4g} Mop, "
                         f"NPB {ops['mpi']:.4g} Mop: not the same operation count, no ratio")
            equivalent = {side: sorted(ops["dsm"] / m for _, m in samples[side]) for side in samples}
            dsm_median, mpi_median = (statistics.median(equivalent[side]) for side in ("dsm", "mpi"))
            rows.append({"kernel": k, "class": a.problem_class, "ranks": ranks, "reps": a.reps,
                         "dsm_median_s": round(dsm_median, 4), "mpi_median_s": round(mpi_median, 4),
                         "ratio": round(dsm_median / mpi_median, 3),
                         "dsm_min_s": round(equivalent["dsm"][0], 4), "dsm_max_s": round(equivalent["dsm"][-1], 4),
                         "mpi_min_s": round(equivalent["mpi"][0], 4), "mpi_max_s": round(equivalent["mpi"][-1], 4)})
            print(f"  {k} class {a.problem_class}, {ranks} rank(s): dsm {dsm_median:.4f} s, "
                  f"NPB-MPI {mpi_median:.4f} s, ratio {dsm_median / mpi_median:.3f}", flush=True)
    return rows


def plot(plt, finish, rows, out):
    """`finish` labels and saves the chart (plotting.finish_kernel_bars)."""
    kernels = list(dict.fromkeys(r["kernel"] for r in rows))
    ranks_list = sorted({r["ranks"] for r in rows})
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / len(ranks_list)
    for i, ranks in enumerate(ranks_list):
        xs, values = [], []
        for x, k in enumerate(kernels):
            found = [r["ratio"] for r in rows if r["kernel"] == k and r["ranks"] == ranks]
            if found:
                xs.append(x + (i - (len(ranks_list) - 1) / 2) * width)
                values.append(found[0])
        ax.bar(xs, values, width, label=f"{ranks} rank{'s' if ranks > 1 else ''}")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.axhline(0.95, color="gray", linewidth=0.8, linestyle="--")
    finish(fig, ax, kernels, "dsm / NPB-MPI (median time)",
           f"NPB class {rows[0]['class']}: dsm against NPB 3.4-MPI, interleaved, {rows[0]['reps']} runs each",
           os.path.join(out, "npb_reference.png"))
