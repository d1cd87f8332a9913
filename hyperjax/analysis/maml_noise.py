"""The paper's Fig. 5: how noisy is one MAML meta-step?

At chosen iterations of a training run, ``K`` meta-steps are taken from the same parameters, each
with freshly sampled trajectories for the same kind of meta-batch, and each updated policy is
evaluated *without adaptation* on the test tasks (the authors' ``grad_main.py``: 50 resamples at
iterations 50, 150, 300, 450). The spread of the ``K`` returns is the noise of the meta-step. Every
resample is evaluated with the same evaluation key (common random numbers), so the spread is the
step's, not the evaluation's. Training then continues from the last resampled step, as the authors'.

Resumable: each policy's progress (its MAML state after the iterations done, and the returns measured
so far, a measurement's population included while it is half done) is a checkpoint in
``<logdir>/checkpoints/<policy>/`` (``train.checkpoint``: CRC-checked, the newest intact one restored).
A run saves after every measurement, every ``checkpoint_minutes`` and when asked to stop (``stop_requests``:
the first Ctrl-C/SIGTERM stops at the next iteration or chunk of resamples, after saving); ``resume``
continues bit for bit where an uninterrupted run would be (resamples in calls of ``parallel``, each call's
keys fixed by the iteration, so any stopping point gives the same numbers).
"""

import contextlib
import csv
import dataclasses
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from hyperjax.agents import maml
from hyperjax.envs import registry
from hyperjax.train import checkpoint
from hyperjax.train import trainer as trainer_lib

COLUMNS = ("policy", "iteration", "resample", "return")
CHECKPOINTS = "checkpoints"  # <logdir>/checkpoints/<policy>/<meta-steps taken>
OUTPUTS = ("csv", "md", "png")  # noise.<ext>
RESUMABLE = ("parallel", "checkpoint_minutes")  # settings a resumed run may change (parallel: float rounding)


class Interrupted(RuntimeError):
    """Ctrl-C or SIGTERM: the run saved its progress and stopped."""


class _NoStopRequests:
    """Signals as they are (the default of ``run``: a library call installs no handlers)."""

    signal_name = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def graceful(self) -> None:
        pass

    @contextlib.contextmanager
    def shielded(self):
        yield


def _shapes(tree):
    """Shapes and dtypes alone: a program lowered from them is the same whether its state was made here or
    restored (restored arrays are committed to their device, which lowering would otherwise write into the
    program, so a resumed run would miss the compilation cache)."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), tree)


def make_train_step(fns: maml.Functions, state: maml.MAMLState):
    """``state -> (state, metrics)``: one training iteration, compiled now for ``state``'s shapes."""
    return jax.jit(lambda s: maml.train_step(fns, s)).lower(_shapes(state)).compile()


def make_resampled_returns(fns: maml.Functions, episodes: int, state: maml.MAMLState, n: int):
    """``(state, keys [n], eval_key) -> (returns [n], params of the last step)``, compiled now: ``n``
    resampled meta-steps from ``state``, vmapped, each evaluated without adaptation with ``eval_key``."""

    def one(state, key, eval_key):
        params, _ = fns.iteration(state, key)
        return params, fns.returns(params, state.test_tasks, state.train_tasks, eval_key, episodes).mean()

    def resampled(state, keys, eval_key):
        params, returns = jax.vmap(one, in_axes=(None, 0, None))(state, keys, eval_key)
        return returns, jax.tree.map(lambda x: x[-1], params)

    key = jax.random.key(0)
    return jax.jit(resampled).lower(_shapes(state), jax.random.split(key, n), key).compile()


def checkpoint_dir(logdir: str, policy: str) -> str:
    return os.path.join(logdir, CHECKPOINTS, policy)


def saved_policies(logdir: str) -> list[str]:
    """The policies with a complete checkpoint in ``logdir`` (orbax renames a step's folder to its number
    once written, so unfinished writes do not count)."""
    root = os.path.join(logdir, CHECKPOINTS)
    if not os.path.isdir(root):
        return []
    folders = [(name, os.path.join(root, name)) for name in os.listdir(root)]
    return sorted(name for name, path in folders if os.path.isdir(path) and any(n.isdigit() for n in os.listdir(path)))


def decide(logdir: str, resume: bool) -> tuple[bool, list[str]]:
    """What a run does with ``logdir``: ``(resume, stale)``, whether to restore its checkpoints, and the
    outputs (``noise.*``) of a run that has no checkpoint to move aside before starting from iteration 0.
    ValueError (one line) for checkpoints without ``resume``, or ``resume`` with nothing to resume."""
    saved = saved_policies(logdir)
    if saved and not resume:
        raise ValueError(
            f"{logdir} already holds a maml_noise run ({', '.join(saved)} saved); pass --resume to continue it, "
            "or choose another --logdir"
        )
    stale = [f"noise.{ext}" for ext in OUTPUTS if not saved and os.path.exists(os.path.join(logdir, f"noise.{ext}"))]
    if resume and not saved and not stale and not os.path.isdir(os.path.join(logdir, CHECKPOINTS)):
        raise ValueError(f"--resume: no maml_noise run in {logdir} (no checkpoint); run once without --resume first")
    return bool(saved), stale


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
    """``noise.csv`` (every resample), ``noise.md`` (the table) and ``noise.png`` in ``logdir``, each
    written beside its place and renamed: an existing file is replaced only by a complete one."""
    paths = {ext: os.path.join(logdir, f"noise.{ext}") for ext in OUTPUTS}
    writers = {
        "csv": lambda path: write_csv(path, rows),
        "md": lambda path: write_table(path, summary(rows), title),
        "png": lambda path: plot(path, rows, title),
    }
    for ext, write in writers.items():
        partial = os.path.join(logdir, f".noise.partial.{ext}")
        write(partial)
        os.replace(partial, paths[ext])
    return paths


@dataclasses.dataclass
class _Progress:
    """One policy's progress, as its checkpoints hold it: ``state`` after ``done`` iterations, and per
    measured iteration (``iterations[i]``) ``measured[i]`` of the ``returns[i]`` computed."""

    state: maml.MAMLState
    returns: np.ndarray  # [len(iterations), resamples], NaN where not measured yet
    measured: np.ndarray  # [len(iterations)] int
    done: int

    def tree(self) -> dict:
        return {
            "state": self.state,
            "returns": jnp.asarray(self.returns),
            "measured": jnp.asarray(self.measured),
            "done": jnp.asarray(self.done, jnp.int32),
        }

    @classmethod
    def of(cls, tree: dict) -> "_Progress":
        return cls(tree["state"], np.array(tree["returns"]), np.array(tree["measured"]), int(tree["done"]))

    @property
    def meta_steps(self) -> int:
        """Meta-steps taken, training and resampled ones: the checkpoint's step (grows with every call)."""
        return self.done + int(self.measured.sum())

    def rows(self, policy: str, iterations: list[int]) -> list[dict]:
        return [
            dict(policy=policy, iteration=it, resample=j, **{"return": float(self.returns[i, j])})
            for i, it in enumerate(iterations)
            for j in range(int(self.measured[i]))
        ]


def config_dict(env_name, backend, policies, iterations, resamples, parallel, eval_episodes, seed, minutes, config):
    """What a policy's checkpoints are checked against on ``resume`` (all but ``RESUMABLE`` must match)."""
    flat = dict(
        env=env_name, backend=backend, policies=list(policies), iterations=list(iterations), resamples=resamples,
        parallel=parallel, eval_episodes=eval_episodes, seed=seed, checkpoint_minutes=minutes,
    )  # fmt: skip
    flat.update({f"agent.{k}": v for k, v in dataclasses.asdict(config).items()})
    return json.loads(json.dumps(flat))


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
    resume: bool = False,
    checkpoint_minutes: float = 10.0,
    stop_requests=_NoStopRequests,
) -> list[dict]:
    """Trains each of ``configs`` (``{policy: MAMLConfig}``) to ``max(iterations)`` and measures;
    returns every row (policy, iteration, resample, return) and writes the outputs to ``logdir``.

    ``resume``: continue from the policies' checkpoints in ``logdir`` (``decide``). ``stop_requests``: a
    context manager class like the runner's (``graceful()`` once compiled, ``signal_name`` once asked to stop,
    ``shielded()`` around writes); the default handles no signals.

    Raises:
      ValueError: checkpoints in ``logdir`` without ``resume``; NaN/inf parameters (the last checkpoint kept).
      checkpoint.CheckpointError: ``resume`` onto checkpoints of other settings, or only damaged ones.
      Interrupted: a stop request, after saving.
    """
    iterations = sorted(iterations)
    resume, _ = decide(logdir, resume) if os.path.isdir(logdir) else (False, [])
    os.makedirs(logdir, exist_ok=True)
    last = max(iterations)
    chunk = min(parallel, resamples)  # resampled steps per call (vmapped), so a stop waits for one call at most
    title = f"MAML meta-step noise on {env_name}"
    say = (lambda line: print(line, file=sys.stderr)) if verbose else (lambda line: None)

    def measure(policy: str, config, before: list[dict]) -> _Progress:
        """One policy: trains to ``last``, measuring at ``iterations``; ``before``: the rows of the policies
        done before it (written with its own)."""
        flat = config_dict(
            env_name, backend, configs, iterations, resamples, parallel, eval_episodes, seed, checkpoint_minutes, config
        )
        episodes = eval_episodes or config.fast_batch
        env, family = registry.EnvSpec(env_name, backend).make_meta(heading_bug=config.heading_bug)
        fns = maml.make_functions(config, env, family)
        mngr = checkpoint.manager(checkpoint_dir(logdir, policy))
        returns = np.full((len(iterations), resamples), np.nan, np.float32)
        empty = _Progress(None, returns, np.zeros(len(iterations), np.int32), 0)
        progress = None
        if resume and mngr.all_steps():
            abstract = {**empty.tree(), "state": jax.eval_shape(fns.init, jax.random.key(seed))}
            abstract = _shapes(abstract)
            tree, _ = checkpoint.restore_latest(mngr, abstract, flat, ignore=RESUMABLE)  # damage: a line, always
            progress = _Progress.of(tree)
            if progress.done == last:
                say(f"{policy}: done in an earlier run ({progress.meta_steps} meta-steps)")
                return progress
            say(f"{policy}: resuming after iteration {progress.done}")

        saved = [None]  # the last step this run saved

        def save(progress: _Progress, stop) -> None:
            """A checkpoint (of a finite state), then the outputs with every row so far."""
            step = progress.meta_steps
            if step == saved[0]:
                return
            if not bool(trainer_lib.all_finite(progress.state.params)):
                kept = f"; its checkpoint at {max(mngr.all_steps())} meta-steps is kept" if mngr.all_steps() else ""
                raise ValueError(
                    f"{policy}: NaN/inf parameters after iteration {progress.done}{kept}; lower the step sizes"
                )
            with stop.shielded():
                if step in mngr.all_steps():  # a damaged checkpoint that restore skipped: replaced
                    mngr.delete(step)
                checkpoint.save(mngr, step, progress.tree(), flat)
                saved[0] = step
                write_outputs(logdir, before + progress.rows(policy, iterations), title)

        with stop_requests() as stop:  # until compiled, a signal ends the process at once (the runner's way)
            t_build = time.perf_counter()
            say(f"{policy}: compiling (Ctrl-C now stops at once; what is saved stays saved)...")
            if progress is None:
                progress = dataclasses.replace(empty, state=jax.jit(fns.init)(jax.random.key(seed)))
            # compiled before any signal is handled: a Python handler could not run during a compilation
            train_step = make_train_step(fns, progress.state)
            sizes = {chunk, resamples % chunk or chunk}  # a population's calls (chunks from resample 0)
            programs = {n: make_resampled_returns(fns, episodes, progress.state, n) for n in sizes}
            stop.graceful()
            say(f"{policy}: compiled in {time.perf_counter() - t_build:.1f} s")
            t0, start, last_save = time.perf_counter(), progress.done, time.perf_counter()
            while progress.done < last:
                it = progress.done + 1
                if it in iterations:  # this iteration's step is the last of the resampled ones
                    i = iterations.index(it)
                    keys = jax.random.split(jax.random.fold_in(progress.state.rng(), it), resamples)
                    eval_key = jax.random.fold_in(progress.state.eval_rng(), it)
                    m = int(progress.measured[i])
                    n = min(chunk, resamples - m)
                    if n not in programs:  # only after a --resume with another --parallel
                        programs[n] = make_resampled_returns(fns, episodes, progress.state, n)
                    values, params = programs[n](progress.state, keys[m : m + n], eval_key)
                    progress.returns[i, m : m + n] = np.asarray(values)
                    progress.measured[i] = m + n
                    if m + n == resamples:
                        state = progress.state
                        key = jax.random.key_data(jax.random.split(state.rng())[0])
                        progress.state, progress.done = state.replace(params=params, key=key), it
                        values = progress.returns[i]
                        say(
                            f"{policy} iteration {it}: {resamples} resampled steps, return "
                            f"{values.mean():.1f} +- {values.std():.1f} -> {os.path.join(logdir, 'noise.md')}"
                        )
                        save(progress, stop)
                        last_save = time.perf_counter()
                else:
                    progress.state, metrics = train_step(progress.state)
                    progress.done = it
                    if it % 10 == 0 or it == 1:
                        rate = (time.perf_counter() - t0) / (it - start)
                        say(
                            f"{policy} iteration {it}/{last} | {rate:.1f} s/iteration | train return after "
                            f"adaptation {float(metrics['train_return_post']):.1f}"
                        )
                timed_out = checkpoint_minutes > 0 and time.perf_counter() - last_save >= 60 * checkpoint_minutes
                if timed_out or stop.signal_name or progress.done == last:
                    save(progress, stop)
                    last_save = time.perf_counter()
                if stop.signal_name:
                    raise Interrupted(f"{stop.signal_name}: {_where(progress, policy, iterations, resamples)}")
        return progress

    rows: list[dict] = []
    for policy, config in configs.items():
        rows += measure(policy, config, rows).rows(policy, iterations)
    write_outputs(logdir, rows, title)
    return rows


def _where(progress: _Progress, policy: str, iterations: list[int], resamples: int) -> str:
    """Where a stopped run stopped, for its last line."""
    partial = [(it, int(m)) for it, m in zip(iterations, progress.measured) if 0 < m < resamples]
    measured = f", {partial[0][1]} of {resamples} resamples of iteration {partial[0][0]} measured" if partial else ""
    return f"{policy} stopped after iteration {progress.done}{measured}, saved; continue with --resume"
