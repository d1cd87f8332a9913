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
import os
import sys
import time

import jax
import numpy as np
from absl import app, flags

from hyperjax.agents import registry as algorithms
from hyperjax.analysis import gradient_accuracy as ga
from hyperjax.experiments import cli, runner, trained
from hyperjax.train import checkpoint

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

COLUMNS = ("step", "seed", "state", "cs", "true_norm", "model_norm", "steps")
CSV_NAME = "gradient_accuracy.csv"


def analyse_run(
    logdir: str, config: ga.GradientConfig, seed: int = 0, log=print, last_step: int | None = None
) -> list[float]:
    """Adds the snapshots of ``logdir`` (up to ``last_step``) not yet in its CSV; returns the seconds each took."""
    algo, run_config, agent_config = runner.load_config(logdir)
    algorithm = algorithms.get(algo)
    mngr = trained.snapshot_manager(logdir)
    path = os.path.join(logdir, CSV_NAME)
    done = {int(r["step"]) for r in read_rows(path)} if os.path.exists(path) else set()
    todo = [s for s in sorted(mngr.all_steps()) if s not in done and (last_step is None or s <= last_step)]
    if not todo:
        return []
    env = runner.env_spec(run_config).make()
    agent = algorithm.make_agent(agent_config, env.observation_size, env.action_size)
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
            for s in range(seeds):
                for i in range(config.num_states):
                    row = [step, run_config.seed + s, i] + [float(out[k][s, i]) for k in COLUMNS[3:]]
                    writer.writerow(row)
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


def summarise(runs: list[str], last_step: int | None = None) -> dict:
    """Per label: ``cs`` (all states), ``steps [T]``, per step ``above_25``, ``above_75``, ``mean``,
    and ``q1``/``q3`` of the per-(run, seed) mean CS at that step (snapshots up to ``last_step``)."""
    groups: dict[str, list[dict]] = {}
    for logdir in runs:
        _, env, label = label_of(logdir)
        rows = read_rows(os.path.join(logdir, CSV_NAME))
        rows = [r for r in rows if last_step is None or int(r["step"]) <= last_step]
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


def main(argv) -> None:
    del argv
    cli.prepare()
    flags_ = flags.FLAGS
    try:
        if not flags_.run:
            raise ValueError("give at least one --run=<folder of a training run with snapshots>")
        for logdir in flags_.run:
            runner.load_config(logdir)  # every folder is a run, before any work
        config = ga.GradientConfig(num_states=flags_.num_states, num_actions=flags_.num_actions)
        if config.num_actions < 2 or config.num_states < 1:
            raise ValueError("--num_actions must be >= 2 and --num_states >= 1")
        seconds = {}
        for logdir in flags_.run:
            times = analyse_run(
                logdir, config, flags_.seed, log=lambda m: print(m, file=sys.stderr), last_step=flags_.last_step
            )
            if times:
                seconds[logdir] = times
    except (ValueError, checkpoint.CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    if flags_.out:
        os.makedirs(flags_.out, exist_ok=True)
        summary = summarise(flags_.run, flags_.last_step)
        algo, env, _ = label_of(flags_.run[0])
        scale = " (CPU scale)" if any("cpu" in r for r in flags_.run) else ""
        envs = sorted({label_of(r)[1] for r in flags_.run})
        title = f"{algo.upper()} critic-gradient accuracy on {', '.join(envs)}{scale}"
        plot(summary, os.path.join(flags_.out, "gradient_accuracy.png"), title)
        command = "python -m hyperjax.experiments.gradient_accuracy " + " ".join(sys.argv[1:])
        with open(os.path.join(flags_.out, "gradient_accuracy.md"), "w") as f:
            f.write(table(summary, flags_.run, seconds, command))
        print(f"figure and table in {flags_.out}/gradient_accuracy.{{png,md}}")


if __name__ == "__main__":
    app.run(main)
