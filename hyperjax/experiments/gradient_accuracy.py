"""The critic-gradient accuracy of training runs (the paper's Fig. 3), from their parameter snapshots.

  python -m hyperjax.experiments.td3 --env=hopper --critic=sa_hyper --snapshot_every=10000 \\
      --logdir=runs/td3_hopper_sa_hyper
  python -m hyperjax.experiments.gradient_accuracy --run=runs/td3_hopper_sa_hyper \\
      --run=runs/td3_hopper_mlp --out=results/fig3

For every snapshot of every run (all its seeds in one program; ``hyperjax/analysis/gradient_accuracy.py``
says how the estimate is made) the per-state cosine similarities go to ``<run>/gradient_accuracy.csv``;
snapshots already there are not analysed again, so a rerun after more training only adds the new
ones. Then ``--out`` gets ``gradient_accuracy.png`` (the paper's four panels, one line per critic:
a, the fraction of states with CS > tau over tau; b, c, that fraction over training for tau 0.25
and 0.75; d, the mean CS over training with the interquartile band over seeds and envs) and
``gradient_accuracy.md`` (the numbers, and the measured cost per snapshot).
"""

import csv
import dataclasses
import os
import sys
import time

from absl import app, flags

from hyperjax.experiments import quiet

with quiet.imports():  # drops mujoco-mjx's "Failed to import warp" lines, nothing else
    import jax
    import numpy as np

    from hyperjax.agents import registry as algorithms
    from hyperjax.analysis import gradient_accuracy as ga
    from hyperjax.experiments import checks, cli, runner, trained
    from hyperjax.train import checkpoint


def define_flags() -> None:
    """The command's flags (defined when it runs, so tests can import this module beside others)."""
    flags.DEFINE_multi_string("run", [], "A training run's folder (with snapshots); repeat for several.")
    flags.DEFINE_string("out", None, "Folder of the figure and table; unset: only the runs' CSVs are written.")
    flags.DEFINE_integer("num_states", ga.GradientConfig.num_states, "States per snapshot and seed (paper: 15).")
    flags.DEFINE_integer("num_actions", ga.GradientConfig.num_actions, "Actions per state, the actor's included (15).")
    flags.DEFINE_integer("seed", 0, "Key of the states and perturbations (fold_in with the step and seed).")
    flags.DEFINE_integer(
        "last_step",
        None,
        "Analyse and summarise only snapshots up to this step (the authors' bias_test.py: 0 to 590,000, "
        "range(0, 600000, 10000)); unset: all.",
        lower_bound=0,
    )


# every row names the settings it was made with (the estimate's sizes and the key's seed), so a rerun
# with other settings analyses the snapshots again instead of reusing (and mislabelling) these rows
SETTINGS = tuple(f.name for f in dataclasses.fields(ga.GradientConfig)) + ("key_seed",)
COLUMNS = (*SETTINGS, "step", "seed", "state", "cs", "true_norm", "model_norm", "steps")
VALUES = ("cs", "true_norm", "model_norm", "steps")
CSV_NAME = "gradient_accuracy.csv"
UNKEYED = "gradient_accuracy.unkeyed.csv"  # an older CSV without the settings columns, kept aside


def settings_key(config: ga.GradientConfig, seed: int) -> tuple[str, ...]:
    """The settings of ``config`` and the key's seed as the CSV holds them."""
    return tuple(str(v) for v in (*dataclasses.astuple(config), seed))


def _key(row: dict) -> tuple[str, ...]:
    return tuple(row[name] for name in SETTINGS)


def keep_unkeyed(path: str, log=print) -> None:
    """Moves a CSV written before its rows named their settings aside (``UNKEYED``): its settings are
    unknown, so its numbers are never reused or shown under a command that did not make them."""
    if not os.path.exists(path):
        return
    with open(path, newline="") as f:
        header = next(csv.reader(f), [])
    if tuple(header) != COLUMNS:
        aside = os.path.join(os.path.dirname(path), UNKEYED)
        os.replace(path, aside)
        log(f"{path}: rows without their settings moved to {aside}; analysing again")


def pending(path: str, key: tuple[str, ...], steps, last_step: int | None = None) -> list[int]:
    """The ``steps`` (up to ``last_step``) the CSV at ``path`` holds no rows of with the settings ``key``."""
    done = {int(r["step"]) for r in read_rows(path) if _key(r) == key} if os.path.exists(path) else set()
    return [s for s in sorted(steps) if s not in done and (last_step is None or s <= last_step)]


def analyse_run(
    logdir: str, config: ga.GradientConfig, seed: int = 0, log=print, last_step: int | None = None
) -> list[float]:
    """Adds the snapshots of ``logdir`` (up to ``last_step``) not yet in its CSV with these settings
    (``config`` and ``seed``); returns the seconds each took."""
    algo, run_config, agent_config = runner.load_config(logdir)
    mngr = trained.snapshot_manager(logdir)
    path = os.path.join(logdir, CSV_NAME)
    keep_unkeyed(path, log)
    key = settings_key(config, seed)
    todo = pending(path, key, mngr.all_steps(), last_step)
    if not todo:
        return []
    env = runner.env_spec(run_config).make()
    agent = trained.make_agent(algo, run_config, agent_config)
    seeds = run_config.num_seeds
    abstract = trained.abstract_snapshot(agent, run_config)
    program = ga.make_program(env, agent, config)
    times = []
    new_file = not os.path.exists(path)
    with open(path, "a", newline="") as f:
        writer = csv.writer(f)
        if new_file:
            writer.writerow(COLUMNS)
        for step in todo:
            t0 = time.perf_counter()
            snapshot = checkpoint.restore(mngr, step, abstract)
            step_key = jax.random.fold_in(jax.random.key(seed), step)
            step_keys = jax.vmap(lambda s, k=step_key: jax.random.fold_in(k, s))(np.arange(seeds))
            out = jax.device_get(program(snapshot, step_keys))
            rows = [
                [*key, step, run_config.seed + s, i] + [float(out[k][s, i]) for k in VALUES]
                for s in range(seeds)
                for i in range(config.num_states)
            ]
            writer.writerows(rows)  # a snapshot's rows at once, then on disk
            f.flush()
            times.append(time.perf_counter() - t0)
            cs = out["cs"]
            log(f"{logdir}: step {step:,}: mean CS {np.nanmean(cs):+.3f} ({times[-1]:.1f} s)")
    return times


def read_rows(path: str) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def label_of(logdir: str) -> tuple[str, str, str]:
    """``(algo, env, label)``: what the run is, for grouping (label: the algorithm's run name)."""
    algo, run_config, agent_config = runner.load_config(logdir)
    return algo, run_config.env, algorithms.get(algo).run_name(agent_config)


def summarise(runs: list[str], key: tuple[str, ...], last_step: int | None = None) -> dict:
    """Per label: ``cs`` (all states), ``steps [T]``, per step ``above_25``, ``above_75``, ``mean``,
    and ``q1``/``q3`` of the per-(run, seed) mean CS at that step (the rows made with the settings
    ``key``, ``settings_key``; snapshots up to ``last_step``)."""
    groups: dict[str, list[dict]] = {}
    for logdir in runs:
        _, env, label = label_of(logdir)
        rows = read_rows(os.path.join(logdir, CSV_NAME))
        rows = [r for r in rows if _key(r) == key and (last_step is None or int(r["step"]) <= last_step)]
        # one row per (step, seed, state): a snapshot analysed twice (a killed write) counts once
        rows = list({(r["step"], r["seed"], r["state"]): r for r in rows}.values())
        for r in rows:
            r["key"] = (logdir, r["seed"])
        groups.setdefault(label, []).extend(rows)
    out = {}
    for label, rows in groups.items():
        cs = np.array([float(r["cs"]) for r in rows])
        steps = sorted({int(r["step"]) for r in rows})
        per_step = {k: [] for k in ("above_25", "above_75", "mean", "q1", "q3", "states")}
        for step in steps:
            at = [r for r in rows if int(r["step"]) == step]
            values = np.array([float(r["cs"]) for r in at])
            fractions = np.asarray(ga.fraction_above(values, (0.25, 0.75)))
            seed_means = [
                np.nanmean([float(r["cs"]) for r in at if r["key"] == key]) for key in sorted({r["key"] for r in at})
            ]
            per_step["above_25"].append(fractions[0])
            per_step["above_75"].append(fractions[1])
            per_step["mean"].append(np.nanmean(values))
            per_step["q1"].append(np.nanpercentile(seed_means, 25))
            per_step["q3"].append(np.nanpercentile(seed_means, 75))
            per_step["states"].append(len(values))
        out[label] = {"cs": cs, "steps": np.array(steps), **{k: np.array(v) for k, v in per_step.items()}}
    return out


def plot(summary: dict, path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(17, 3.8), dpi=110)
    taus = np.array(ga.THRESHOLDS)
    for i, (label, s) in enumerate(sorted(summary.items())):
        color = f"C{i}"
        axes[0].plot(taus, np.asarray(ga.fraction_above(s["cs"])), color=color, label=label)
        axes[1].plot(s["steps"], s["above_25"], color=color, marker=".", label=label)
        axes[2].plot(s["steps"], s["above_75"], color=color, marker=".", label=label)
        axes[3].plot(s["steps"], s["mean"], color=color, marker=".", label=label)
        axes[3].fill_between(s["steps"], s["q1"], s["q3"], color=color, alpha=0.2)
    panels = [
        ("(a) states with CS > tau", "tau", "fraction of states"),
        ("(b) CS > 0.25 over training", "env steps", "fraction of states"),
        ("(c) CS > 0.75 over training", "env steps", "fraction of states"),
        ("(d) mean CS (band: IQR over seeds)", "env steps", "mean cosine similarity"),
    ]
    for ax, (name, xlabel, ylabel) in zip(axes, panels):
        ax.set(title=name, xlabel=xlabel, ylabel=ylabel)
        ax.grid(alpha=0.3)
    axes[3].axhline(0.0, color="k", lw=0.8)
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def table(summary: dict, runs: list[str], seconds: dict, command: str) -> str:
    lines = ["# Critic-gradient accuracy (cosine similarity of dQ/da with the least-squares return gradient)", ""]
    lines += ["Runs: " + ", ".join(f"`{r}`" for r in runs), ""]
    lines += ["| critic | states | mean CS | CS > 0 | CS > 0.25 | CS > 0.75 | mean CS per snapshot (step: CS) |"]
    lines += ["|---|---:|---:|---:|---:|---:|---|"]
    for label, s in sorted(summary.items()):
        f0, f25, f75 = np.asarray(ga.fraction_above(s["cs"], (0.0, 0.25, 0.75)))
        per = ", ".join(f"{step:,}: {m:+.2f}" for step, m in zip(s["steps"], s["mean"]))
        lines.append(
            f"| {label} | {len(s['cs'])} | {np.nanmean(s['cs']):+.3f} | {f0:.2f} | {f25:.2f} | {f75:.2f} | {per} |"
        )
    if seconds:
        lines += ["", "Cost per snapshot (all seeds of a run in one program; the first includes compilation):", ""]
        for run, times in seconds.items():
            later = f", then median {np.median(times[1:]):.1f} s" if len(times) > 1 else ""
            lines.append(f"- `{run}`: {len(times)} snapshot(s), first {times[0]:.1f} s{later}")
    lines += ["", f"Command: `{command}`", ""]
    return "\n".join(lines)


def check_runs(runs: list[str], last_step: int | None) -> None:
    """ValueError (one line) for the first run that cannot be analysed, before any work: not a run,
    given twice, an algorithm without an agent (MAML, PEARL), no snapshots (up to ``last_step``), or a
    folder its CSV cannot be written to."""
    if not runs:
        raise ValueError("give at least one --run=<folder of a training run with snapshots>")
    for logdir in runs:
        if runs.count(logdir) > 1:
            raise ValueError(f"--run={logdir} is given twice")
        algo, run_config, agent_config = trained.load(logdir)
        trained.make_agent(algo, run_config, agent_config)  # refuses algorithms without one
        steps = trained.snapshot_steps(logdir)
        if not steps:
            raise ValueError(
                f"--run={logdir} has no parameter snapshots; train it with --snapshot_every (paper: 10000)"
            )
        if last_step is not None and steps[0] > last_step:
            raise ValueError(f"--run={logdir} has no snapshot up to --last_step={last_step}; its first is {steps[0]}")
        why = checks.why_not_writable(logdir)
        if why:
            raise ValueError(f"--run={logdir}: its {CSV_NAME} cannot be written: {why}")


def main(argv) -> None:
    del argv
    cli.prepare()
    flags_ = flags.FLAGS
    log = lambda m: print(m, file=sys.stderr)  # noqa: E731

    def work() -> None:
        config = ga.GradientConfig(num_states=flags_.num_states, num_actions=flags_.num_actions)
        if config.num_states < 1:
            raise ValueError(f"--num_states={config.num_states} is out of range: it must be >= 1")
        if config.num_actions < 2:
            raise ValueError(f"--num_actions={config.num_actions} is out of range: it must be >= 2 (a slope)")
        if flags_.out:
            checks.folder(flags_.out, "--out")
        check_runs(flags_.run, flags_.last_step)
        seconds = {}
        for logdir in flags_.run:
            times = analyse_run(logdir, config, flags_.seed, log=log, last_step=flags_.last_step)
            if times:
                seconds[logdir] = times
        if flags_.out:
            os.makedirs(flags_.out, exist_ok=True)
            summary = summarise(flags_.run, settings_key(config, flags_.seed), flags_.last_step)
            algo, env, _ = label_of(flags_.run[0])
            scale = " (CPU scale)" if any("cpu" in r for r in flags_.run) else ""
            envs = sorted({label_of(r)[1] for r in flags_.run})
            title = f"{algo.upper()} critic-gradient accuracy on {', '.join(envs)}{scale}"
            plot(summary, os.path.join(flags_.out, "gradient_accuracy.png"), title)
            command = "python -m hyperjax.experiments.gradient_accuracy " + " ".join(sys.argv[1:])
            with open(os.path.join(flags_.out, "gradient_accuracy.md"), "w") as f:
                f.write(table(summary, flags_.run, seconds, command))

        analysed = sum(len(t) for t in seconds.values())
        print(f"{analysed} snapshot(s) analysed; the per-state values in each run's {CSV_NAME}", file=sys.stderr)
        if flags_.out:
            print(f"figure and table in {flags_.out}/gradient_accuracy.{{png,md}}")

    interrupted = (
        "the snapshots analysed so far are kept in each run's gradient_accuracy.csv; "
        "the same command goes on from there"
    )
    sys.exit(checks.one_line_errors(work, interrupted, refusals=(checkpoint.CheckpointError,)))


if __name__ == "__main__":
    define_flags()
    app.run(main, flags_parser=cli.parse_flags)
