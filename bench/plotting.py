"""What the benchmark scripts share for their plots: Debian's matplotlib,
which serves /usr/bin/python3 only (scripts/install-deps --bench)."""
import os
import sys


def run_where_matplotlib_is():
    """Re-executes the calling script under /usr/bin/python3 when the python3
    that runs it lacks matplotlib (another python3 on PATH may shadow
    Debian's), unless it was asked for --no-plot."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        if "--no-plot" not in sys.argv and os.path.exists("/usr/bin/python3") and sys.executable != "/usr/bin/python3":
            os.execv("/usr/bin/python3", ["/usr/bin/python3", *sys.argv])


def pyplot():
    """matplotlib.pyplot, drawing to files (no display)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def finish_kernel_bars(fig, ax, kernels, ylabel, title, path):
    """Labels a bar chart grouped by NPB kernel and saves it."""
    ax.set_xticks(range(len(kernels)), [k.upper() for k in kernels])
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
