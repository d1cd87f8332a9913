"""Aggregation of evaluation returns across runs and seeds, with honest statistics (no plotting).

A run directory holds ``config.json`` and ``metrics.csv`` (written by ``experiments.runner``). Runs of
the same ``(algo, env, label)`` are pooled into one ``Group`` of seeds, aligned on the evaluation steps
all of them have. On top of groups:

- ``bootstrap_ci``: mean over seeds with a percentile-bootstrap 95% interval over seeds.
- ``final_mean``: the mean over seeds of the return at the group's last common evaluation.
- normalised scores: returns divided by the baseline label's ``final_mean`` on the same (algo, env).
- ``steps_to_reach``: the first evaluation step at which a mean curve reaches a target score.
- ``iqm`` and ``performance_profiles``: rliable's interquartile mean with stratified-bootstrap
  intervals, and its score distributions, over a ``[num_runs, num_envs]`` matrix of normalised scores.

References:
  Agarwal et al. 2021, "Deep Reinforcement Learning at the Edge of the Statistical Precipice" (rliable).
"""

import contextlib
import csv
import dataclasses
import json
import os

import numpy as np
from rliable import library as rly
from rliable import metrics as rly_metrics

from hyperjax import config as cfg
from hyperjax.agents import registry as algorithms

BOOTSTRAP_REPS = 10_000  # percentile-bootstrap resamples of the seeds for the curves' and tables' intervals
RLIABLE_REPS = 2_000  # stratified-bootstrap resamples for IQM intervals and performance profiles
SEED = 0  # numpy seed of every resampling: the same inputs give the same intervals
CONFIDENCE = 0.95
FALLBACK_LABELS = ("critic", "policy", "model")  # agent fields tried when the label cannot be rebuilt


@dataclasses.dataclass(frozen=True)
class Run:
    """One run directory: ``steps [T]``, ``returns [S, T]`` (NaN where not measured), ``seeds [S]``."""

    path: str
    algo: str
    env: str
    label: str
    step_name: str
    seeds: tuple[int, ...]
    steps: np.ndarray
    returns: np.ndarray
    cpu_scale: bool


@dataclasses.dataclass(frozen=True)
class Group:
    """The pooled seeds of one ``(algo, env, label)``, aligned on the steps all its runs have.

    Attributes:
      steps: ``[T]`` evaluation steps common to every run of the group.
      returns: ``[S, T]`` evaluation returns, one row per seed.
      seeds: ``[S]`` true seed numbers (``run.seed + i``); may repeat (see ``duplicate_seeds``).
      max_step: the last step any run of the group reached (> ``steps[-1]`` when a run is unfinished).
      duplicate_seeds: seed numbers found in more than one run directory (all kept).
      paths: the run directories pooled.
    """

    algo: str
    env: str
    label: str
    step_name: str
    steps: np.ndarray
    returns: np.ndarray
    seeds: tuple[int, ...]
    max_step: int
    duplicate_seeds: tuple[int, ...]
    paths: tuple[str, ...]
    cpu_scale: bool

    @property
    def key(self) -> tuple[str, str, str]:
        return self.algo, self.env, self.label


def find_runs(paths: list[str]) -> list[tuple[str, str]]:
    """``(run_dir, root)`` for every folder under each path holding ``config.json`` and ``metrics.csv``.

    Raises:
      FileNotFoundError: a path does not exist.
    """
    found = []
    for root in paths:
        if not os.path.exists(root):
            raise FileNotFoundError(f"{root} does not exist")
        for folder, subdirs, files in os.walk(root):
            subdirs.sort()
            if "config.json" in files and "metrics.csv" in files:
                found.append((folder, root))
    return found


def label_of(config: dict) -> tuple[str, str]:
    """``(label, step_name)`` of a run: the algorithm's ``run_name`` of its rebuilt agent config, or
    else the first of ``agent.critic`` / ``agent.policy`` / ``agent.model`` the config has."""
    try:
        algorithm = algorithms.get(config["algo"])
    except (KeyError, ValueError):
        algorithm = None
    if algorithm is not None:
        fields = {k[len("agent.") :]: cfg.as_tuples(v) for k, v in config.items() if k.startswith("agent.")}
        try:
            return algorithm.run_name(algorithm.config(**fields)), algorithm.step_name
        except (TypeError, ValueError, AttributeError):
            pass
    step_name = algorithm.step_name if algorithm is not None else "steps"
    for field in FALLBACK_LABELS:
        if f"agent.{field}" in config:
            return str(config[f"agent.{field}"]), step_name
    return "default", step_name


def is_cpu_scale(run_dir: str, root: str) -> bool:
    """Whether the run's path from ``root`` on (root's own name included) says ``cpu``, or a ``SCALE``
    file in the run's folder or a parent up to ``root`` does."""
    folder, top = os.path.abspath(run_dir), os.path.abspath(root)
    if "cpu" in os.path.relpath(folder, os.path.dirname(top)).lower():
        return True
    while True:
        scale = os.path.join(folder, "SCALE")
        if os.path.isfile(scale):
            with open(scale) as f:
                if "cpu" in f.read().lower():
                    return True
        if folder == top or os.path.dirname(folder) == folder:
            return False
        folder = os.path.dirname(folder)


def read_run(run_dir: str, root: str | None = None) -> Run:
    """Reads one run directory; rows whose returns are all empty are dropped, a repeated step keeps
    its last row.

    Raises:
      ValueError: an unreadable config or a metrics.csv without ``step`` and ``return_seed*`` columns.
    """
    try:
        with open(os.path.join(run_dir, "config.json")) as f:
            config = json.load(f)
        with open(os.path.join(run_dir, "metrics.csv"), newline="") as f:
            reader = csv.DictReader(f)
            rows, columns = list(reader), reader.fieldnames or []
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{run_dir}: cannot read the run: {e}") from e
    num_seeds = sum(c.startswith("return_seed") for c in columns)
    if "step" not in columns or not num_seeds or "algo" not in config:
        raise ValueError(f"{run_dir}: not a run (needs 'algo' in config.json, step and return_seed* columns)")
    by_step = {}
    for row in rows:
        values = [float(row[f"return_seed{i}"]) if row.get(f"return_seed{i}") else np.nan for i in range(num_seeds)]
        if row.get("step") and not np.all(np.isnan(values)):
            by_step[int(float(row["step"]))] = values
    steps = np.array(sorted(by_step), dtype=np.int64)
    returns = np.array([by_step[s] for s in steps], dtype=np.float64).reshape(len(steps), num_seeds).T
    first = int(config.get("run.seed", 0))
    label, step_name = label_of(config)
    return Run(
        path=run_dir,
        algo=config["algo"],
        env=str(config.get("run.env", "unknown")),
        label=label,
        step_name=step_name,
        seeds=tuple(first + i for i in range(num_seeds)),
        steps=steps,
        returns=returns,
        cpu_scale=is_cpu_scale(run_dir, root or run_dir),
    )


def pool(runs: list[Run]) -> Group:
    """One group of the runs of a single ``(algo, env, label)``: their seeds stacked, on common steps."""
    steps = runs[0].steps
    for run in runs[1:]:
        steps = np.intersect1d(steps, run.steps)
    rows = [run.returns[:, np.searchsorted(run.steps, steps)] for run in runs]
    seeds = [s for run in runs for s in run.seeds]
    order = np.argsort(seeds, kind="stable")
    duplicates = sorted({s for s in seeds if seeds.count(s) > 1})
    return Group(
        algo=runs[0].algo,
        env=runs[0].env,
        label=runs[0].label,
        step_name=runs[0].step_name,
        steps=steps,
        returns=np.concatenate(rows)[order],
        seeds=tuple(seeds[i] for i in order),
        max_step=max(int(run.steps[-1]) if run.steps.size else 0 for run in runs),
        duplicate_seeds=tuple(duplicates),
        paths=tuple(run.path for run in runs),
        cpu_scale=any(run.cpu_scale for run in runs),
    )


def load_groups(paths: list[str]) -> dict[tuple[str, str, str], Group]:
    """Every run under ``paths``, pooled by ``(algo, env, label)`` (sorted keys); groups with no common
    evaluation step are left out.

    Raises:
      FileNotFoundError: a path does not exist. ValueError: no run directory found, or an unreadable run.
    """
    found = find_runs(paths)
    if not found:
        raise ValueError(f"no run directories (config.json + metrics.csv) under {', '.join(paths)}")
    by_key: dict[tuple[str, str, str], list[Run]] = {}
    for run_dir, root in found:
        run = read_run(run_dir, root)
        if run.steps.size:
            by_key.setdefault((run.algo, run.env, run.label), []).append(run)
    groups = {key: pool(runs) for key, runs in sorted(by_key.items())}
    return {key: group for key, group in groups.items() if group.steps.size}


def bootstrap_ci(
    returns: np.ndarray, reps: int = BOOTSTRAP_REPS, confidence: float = CONFIDENCE, seed: int = SEED
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over seeds and its percentile-bootstrap interval, resampling the seeds with replacement.

    Args:
      returns: ``[S, T]`` (or ``[S]``) one row per seed.
    Returns:
      ``(mean, low, high)``, each ``[T]`` (or scalars). One seed, or equal seeds: a zero-width interval.
    """
    returns = np.asarray(returns, np.float64)
    num_seeds = returns.shape[0]
    rng = np.random.default_rng(seed)
    # a resample of the seeds is a vector of counts: its mean is counts @ returns / S
    counts = rng.multinomial(num_seeds, np.full(num_seeds, 1.0 / num_seeds), size=reps)
    means = np.tensordot(counts, returns, axes=1) / num_seeds
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(means, [tail, 100 - tail], axis=0)
    mean = returns.mean(axis=0)
    # the percentiles of equal values can differ from the mean in the last bit
    return mean, np.minimum(low, mean), np.maximum(high, mean)


def final_mean(group: Group) -> float:
    """The final mean: the mean over seeds of the return at the group's last common evaluation."""
    return float(group.returns[:, -1].mean())


def steps_to_reach(steps: np.ndarray, curve: np.ndarray, target: float) -> int | None:
    """The first step ``[T]`` at which ``curve [T]`` is at least ``target``; None if it never is."""
    reached = np.flatnonzero(np.asarray(curve) >= target)
    return int(steps[reached[0]]) if reached.size else None


def baselines(
    groups: dict[tuple[str, str, str], Group], baseline: str, algo: str
) -> tuple[dict[str, float], list[str]]:
    """``({env: the baseline label's final mean}, [envs of algo without the baseline])``."""
    envs = sorted({env for a, env, _ in groups if a == algo})
    refs = {env: final_mean(groups[algo, env, baseline]) for env in envs if (algo, env, baseline) in groups}
    return refs, [env for env in envs if env not in refs]


def normalize(returns: np.ndarray, reference: float) -> np.ndarray:
    """``returns / reference``: 1.0 is the baseline's final mean (meaningful for a positive reference)."""
    return np.asarray(returns, np.float64) / reference


def score_matrices(
    groups: dict[tuple[str, str, str], Group], refs: dict[str, float], algo: str
) -> tuple[dict[str, np.ndarray], list[str], list[str]]:
    """Normalised final scores per label, ``[num_runs, num_envs]`` over the envs of ``refs`` (sorted).

    A label needs every env; each env contributes its first ``num_runs`` seeds (the fewest any env has).
    Returns:
      ``(scores {label: [N, E]}, envs, labels left out for lacking an env)``.
    """
    envs = sorted(refs)
    labels = sorted({label for a, _, label in groups if a == algo})
    scores, left_out = {}, []
    for label in labels:
        if any((algo, env, label) not in groups for env in envs):
            left_out.append(label)
            continue
        finals = [normalize(groups[algo, env, label].returns[:, -1], refs[env]) for env in envs]
        runs = min(len(f) for f in finals)
        scores[label] = np.stack([f[:runs] for f in finals], axis=1)
    return scores, envs, left_out


@contextlib.contextmanager
def _numpy_seed(seed: int):
    """rliable's stratified bootstrap draws from numpy's global generator: seed it, then restore it."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def iqm(
    scores: dict[str, np.ndarray], reps: int = RLIABLE_REPS, confidence: float = CONFIDENCE, seed: int = SEED
) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    """rliable's IQM (the 25%-trimmed mean over all runs and envs) with stratified-bootstrap intervals.

    Args:
      scores: ``{label: [num_runs, num_envs]}`` normalised scores.
    Returns:
      ``({label: IQM}, {label: (low, high)})``.
    """

    def func(x):
        return np.array([rly_metrics.aggregate_iqm(x)])

    with _numpy_seed(seed):
        points, intervals = rly.get_interval_estimates(scores, func, reps=reps, confidence_interval_size=confidence)
    return (
        {k: float(v[0]) for k, v in points.items()},
        {k: (float(v[0, 0]), float(v[1, 0])) for k, v in intervals.items()},
    )


def performance_profiles(
    scores: dict[str, np.ndarray], taus: np.ndarray, reps: int = RLIABLE_REPS, seed: int = SEED
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """rliable's performance profiles: the fraction of runs (over all envs) scoring above each tau.

    Args:
      scores: ``{label: [num_runs, num_envs]}``. taus: ``[K]`` thresholds.
    Returns:
      ``({label: [K]}, {label: [2, K] stratified-bootstrap 95% interval})``.
    """
    with _numpy_seed(seed):
        return rly.create_performance_profile(scores, taus, reps=reps)
