"""What the CPU-scale sweeps (maml_cpu, pearl_cpu) share: launch one run per variant (parallel
processes of a ``hyperjax.experiments`` entry point, through ``experiments/sweep.py``: finished runs
skipped, the others resumed from their checkpoints), then draw their curves into one figure and a
table of the last evaluation."""

import argparse
import csv
import os
import platform
import sys
from collections.abc import Callable

import numpy as np

from experiments import sweep
from hyperjax.experiments import checks


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def launch(entry: str, runs: dict[str, list[str]], logdir: str, parallel: int) -> int:
    """Runs ``python -m hyperjax.experiments.<entry> <flags> --logdir=<logdir>/<name>`` for each
    ``name: flags`` as a CPU-scale sweep (``experiments/sweep.py``: finished runs skipped, those with
    checkpoints resumed, ``parallel`` at a time, logs in ``<logdir>/<name>.log``, the record in
    ``<logdir>/sweep.json``); 0 if every run succeeded."""
    return sweep.run_sweep(
        [sweep.Run(name, entry, tuple(flags)) for name, flags in runs.items()], logdir, "cpu", parallel
    )


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

    names = sorted(n for n in os.listdir(logdir) if os.path.exists(os.path.join(logdir, n, "metrics.csv")))
    if not names:
        raise ValueError(f"no run in {logdir} has evaluated yet (no <run>/metrics.csv): nothing to draw")
    fig, ax = plt.subplots(figsize=(7.5, 4.4), dpi=120)
    labels = [label for label, _ in curves.values()]
    lines = [f"# {title}", "", note, "", "| run | iterations | " + " | ".join(labels) + " | wall time |"]
    lines.append("|---|---:|" + "---:|" * len(labels) + "---:|")
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


def parser(doc: str) -> argparse.ArgumentParser:
    """The CPU sweeps' argparse, a bad flag as one line (``error: ...``, exit code 1)."""
    return checks.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def check(variants: str, flag: str, valid: tuple[str, ...], env: str, default_env: str, logdir, out) -> list[str]:
    """The variants ``variants`` names (``flag``: checked against ``valid``), the env (a meta task of
    the registry, asked of a child process when not the default), ``--logdir`` and ``--out``; one line
    and exit code 1 for the first bad one."""
    try:
        names = checks.names(variants, flag, valid)
        if env != default_env:
            sweep.check_envs(env, "--env", [default_env])
        if logdir:
            checks.folder(logdir, "--logdir")
        checks.folder(out, "--out")
    except ValueError as e:
        sweep.refuse(str(e))
    return names


def finish(launch_code: int, draw: Callable[[], str]) -> None:
    """Draws the figure (``draw`` returns where) from the runs there are, even after failed runs, and
    exits non-zero if a run or the drawing failed; errors and Ctrl-C as one line."""
    try:
        where = draw()
    except ValueError as e:
        sweep.refuse(str(e))
    except OSError as e:
        sweep.refuse(checks.os_error(e))
    except KeyboardInterrupt:
        print("\ninterrupted: the runs keep their checkpoints; the same command goes on", file=sys.stderr)
        sys.exit(130)
    print(f"figure and table in {where}")
    if launch_code:
        print(f"some runs failed (exit code {launch_code}); the figure shows the runs there are", file=sys.stderr)
        sys.exit(launch_code)
