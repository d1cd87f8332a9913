"""The paper's Fig. 5: how noisy is one MAML meta-step?

At chosen iterations of a training run, ``K`` meta-steps are taken from the same parameters, each
with freshly sampled trajectories for the same kind of meta-batch, and each updated policy is
evaluated *without adaptation* on the test tasks (the authors' ``grad_main.py``: 50 resamples at
iterations 50, 150, 300, 450). The spread of the ``K`` returns is the noise of the meta-step. Every
resample is evaluated with the same evaluation key (common random numbers), so the spread is the
step's, not the evaluation's. Training then continues from the last resampled step, as the authors'.
"""

import csv
import functools
import os
import sys
import time

import jax
import numpy as np

from hyperjax.agents import maml
from hyperjax.envs import registry
from hyperjax.train import trainer as trainer_lib

COLUMNS = ("policy", "iteration", "resample", "return")


def make_resampled_returns(fns: maml.Functions, episodes: int, batch_size: int):
    """``(state, keys [K], eval_key) -> (returns [K], params of the last step)``, jitted.

    ``batch_size`` resampled steps run vmapped at a time (``lax.map``): all ``K`` where memory allows.
    """

    def one(state, key, eval_key):
        params, _ = fns.iteration(state, key)
        return params, fns.returns(params, state.test_tasks, state.train_tasks, eval_key, episodes).mean()

    def resampled(state, keys, eval_key):
        params, returns = jax.lax.map(lambda k: one(state, k, eval_key), keys, batch_size=batch_size)
        return returns, jax.tree.map(lambda x: x[-1], params)

    return jax.jit(resampled)


def summary(rows: list[dict]) -> list[dict]:
    """Per policy and iteration: mean, std, quartiles, min and max of the resampled returns."""
    groups: dict[tuple, list[float]] = {}
    for row in rows:
        groups.setdefault((row["policy"], int(row["iteration"])), []).append(float(row["return"]))
    out = []
    for (policy, iteration), values in sorted(groups.items()):
        v = np.asarray(values)
        q1, median, q3 = np.percentile(v, [25, 50, 75])
        out.append(
            dict(
                policy=policy,
                iteration=iteration,
                n=v.size,
                mean=v.mean(),
                std=v.std(ddof=1) if v.size > 1 else 0.0,
                q1=q1,
                median=median,
                q3=q3,
                min=v.min(),
                max=v.max(),
            )
        )
    return out


def write_csv(path: str, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def write_table(path: str, stats: list[dict], title: str) -> None:
    lines = [
        f"# {title}",
        "",
        "Return on the test tasks without adaptation after one meta-step, over resampled trajectories.",
        "",
        "| policy | iteration | n | mean | std | IQR | min | max |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in stats:
        lines.append(
            f"| {s['policy']} | {s['iteration']} | {s['n']} | {s['mean']:.1f} | {s['std']:.1f} | "
            f"{s['q3'] - s['q1']:.1f} | {s['min']:.1f} | {s['max']:.1f} |"
        )
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def plot(path: str, rows: list[dict], title: str) -> None:
    """Box plots of the resampled returns per iteration, one colour per policy (as the paper's Fig. 5)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    policies = list(dict.fromkeys(r["policy"] for r in rows))
    iterations = sorted({int(r["iteration"]) for r in rows})
    width = 0.8 / max(1, len(policies))
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    for i, policy in enumerate(policies):
        data = [
            [float(r["return"]) for r in rows if r["policy"] == policy and int(r["iteration"]) == it]
            for it in iterations
        ]
        positions = np.arange(len(iterations)) + (i - (len(policies) - 1) / 2) * width
        parts = ax.boxplot(data, positions=positions, widths=width * 0.9, patch_artist=True, medianprops={"color": "k"})
        color = f"C{i}"
        for box in parts["boxes"]:
            box.set(facecolor=color, alpha=0.5)
        ax.plot([], [], color=color, lw=6, alpha=0.5, label=policy)
    ax.set_xticks(np.arange(len(iterations)), [str(it) for it in iterations])
    ax.set(xlabel="meta-iteration", ylabel="test return without adaptation", title=title)
    ax.grid(alpha=0.3, axis="y")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_outputs(logdir: str, rows: list[dict], title: str) -> dict:
    """``noise.csv`` (every resample), ``noise.md`` (the table) and ``noise.png`` in ``logdir``."""
    paths = {name: os.path.join(logdir, f"noise.{name}") for name in ("csv", "md", "png")}
    write_csv(paths["csv"], rows)
    write_table(paths["md"], summary(rows), title)
    plot(paths["png"], rows, title)
    return paths


def run(
    env_name: str,
    configs: dict,
    iterations: list[int],
    resamples: int,
    parallel: int,
    eval_episodes: int,
    seed: int,
    logdir: str,
    backend: str = registry.DEFAULT_BACKEND,
    verbose: bool = True,
) -> list[dict]:
    """Trains each of ``configs`` (``{policy: MAMLConfig}``) to ``max(iterations)`` and measures;
    returns every row (policy, iteration, resample, return) and writes the outputs to ``logdir``."""
    os.makedirs(logdir, exist_ok=True)
    rows: list[dict] = []
    title = f"MAML meta-step noise on {env_name}"
    last = max(iterations)
    for policy, config in configs.items():
        env, family = registry.EnvSpec(env_name, backend).make_meta(heading_bug=config.heading_bug)
        fns = maml.make_functions(config, env, family)
        state = jax.jit(fns.init)(jax.random.key(seed))
        train_step = jax.jit(functools.partial(maml.train_step, fns))
        resampled = make_resampled_returns(fns, eval_episodes or config.fast_batch, min(parallel, resamples))
        t0 = time.perf_counter()
        for it in range(1, last + 1):
            if it in iterations:  # this iteration's step is the last of the resampled ones
                keys = jax.random.split(jax.random.fold_in(state.rng(), it), resamples)
                returns, params = resampled(state, keys, jax.random.fold_in(state.eval_rng(), it))
                state = state.replace(params=params, key=jax.random.key_data(jax.random.split(state.rng())[0]))
                rows += [
                    dict(policy=policy, iteration=it, resample=i, **{"return": float(r)}) for i, r in enumerate(returns)
                ]
                paths = write_outputs(logdir, rows, title)
                if verbose:
                    print(
                        f"{policy} iteration {it}: {resamples} resampled steps, return "
                        f"{returns.mean():.1f} +- {returns.std():.1f} -> {paths['md']}",
                        file=sys.stderr,
                    )
            else:
                state, metrics = train_step(state)
                if verbose and (it % 10 == 0 or it == 1):
                    rate = (time.perf_counter() - t0) / it
                    print(
                        f"{policy} iteration {it}/{last} | {rate:.1f} s/iteration | train return after adaptation "
                        f"{float(metrics['train_return_post']):.1f}",
                        file=sys.stderr,
                    )
            if not bool(trainer_lib.all_finite(state.params)):
                raise ValueError(f"{policy}: NaN/inf parameters at iteration {it}; lower the step sizes")
    return rows
