"""What the CPU-scale sweeps share: launch one run per variant (parallel processes of a
``hyperjax.experiments`` entry point, resumed when their folder holds a checkpoint), then draw their
curves into one figure and a table of the last evaluation."""

import csv
import os
import platform
import subprocess
import sys
import time

import numpy as np


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def launch(entry: str, runs: dict[str, list[str]], logdir: str, parallel: int) -> list[int]:
    """Runs ``python -m hyperjax.experiments.<entry> <flags> --logdir=<logdir>/<name>`` for each
    ``name: flags``, ``parallel`` at a time (logs in ``<logdir>/<name>.log``); their exit codes."""
    procs, start = [], time.time()
    os.makedirs(logdir, exist_ok=True)
    for name, flags in runs.items():
        cmd = [sys.executable, "-m", f"hyperjax.experiments.{entry}", *flags, f"--logdir={os.path.join(logdir, name)}"]
        checkpoints = os.path.join(logdir, name, "checkpoints")
        if os.path.isdir(checkpoints) and os.listdir(checkpoints):
            cmd.append("--resume")
        while len([p for p in procs if p.poll() is None]) >= parallel:
            time.sleep(5)
        with open(os.path.join(logdir, f"{name}.log"), "w") as log:
            procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT))
    codes = [p.wait() for p in procs]
    print(f"runs finished with exit codes {codes} in {(time.time() - start) / 60:.0f} min", file=sys.stderr)
    return codes


def read(path: str, columns: list[str]) -> dict[str, np.ndarray]:
    """``step``, ``wall_s`` and ``columns`` of a run's metrics.csv."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    out = {c: np.array([float(r[c]) if r[c] else np.nan for r in rows]) for c in ["step", "wall_s", *columns]}
    out["step"] = out["step"].astype(int)
    return out


def report(logdir: str, stem: str, title: str, curves: dict[str, tuple[str, str]], note: str, command: str) -> None:
    """One figure (``stem.png``) and table (``stem.md``) over every run folder in ``logdir``.

    ``curves``: ``column -> (label, line style)``; the first is the headline (bold).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.4), dpi=120)
    labels = [label for label, _ in curves.values()]
    lines = [f"# {title}", "", note, "", "| run | iterations | " + " | ".join(labels) + " | wall time |"]
    lines.append("|---|---:|" + "---:|" * len(labels) + "---:|")
    names = sorted(n for n in os.listdir(logdir) if os.path.exists(os.path.join(logdir, n, "metrics.csv")))
    for i, name in enumerate(names):
        curve = read(os.path.join(logdir, name, "metrics.csv"), list(curves))
        for j, (column, (label, style)) in enumerate(curves.items()):
            ax.plot(
                curve["step"], curve[column], color=f"C{i}", lw=2 if j == 0 else 1.2, ls=style, label=f"{name}: {label}"
            )
        values = " | ".join(f"{curve[c][-1]:.1f}" for c in curves)
        lines.append(f"| {name} | {curve['step'][-1]} | {values} | {curve['wall_s'][-1] / 60:.0f} min |")
    ax.set(xlabel="iteration", ylabel="return", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    os.makedirs(os.path.dirname(stem) or ".", exist_ok=True)
    fig.savefig(stem + ".png")
    lines += ["", f"Command: `{command}`"]
    with open(stem + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
