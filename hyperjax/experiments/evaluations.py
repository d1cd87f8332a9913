"""Evaluation and logging: each evaluation's returns with the training metrics since the previous
one as a row of ``metrics.csv``, TensorBoard scalars and ``curve.png`` (process 0 alone writes), and
the progress line (verbose runs). The runner logs whatever a trainer lists: ``extra_returns``,
``metric_names``."""

import contextlib
import dataclasses
import os
import time

import numpy as np

from hyperjax.train import distributed, logger
from hyperjax.train import trainer as trainer_lib


class Means:
    """Step-weighted means per seed of the metrics of several training calls (NaNs skipped)."""

    def __init__(self):
        self.sums, self.weights = {}, {}

    def add(self, metrics: dict, steps: int) -> None:
        for k, v in metrics.items():
            v = np.asarray(v, np.float64)
            ok = np.isfinite(v)
            self.sums[k] = self.sums.get(k, 0.0) + np.where(ok, v * steps, 0.0)
            self.weights[k] = self.weights.get(k, 0.0) + ok * steps

    def result(self) -> dict:
        with np.errstate(invalid="ignore", divide="ignore"):
            return {k: self.sums[k] / self.weights[k] for k in self.sums}


def evaluate(trainer: trainer_lib.Trainer, state, step: int) -> dict:
    """``{'return': [S], **extra_returns}``: the trainer's evaluation, averaged per seed."""
    evaluation = trainer.evaluate(state, step)
    if not isinstance(evaluation, dict):
        evaluation = {"return": evaluation}
    return {k: distributed.to_host(v).mean(axis=1) for k, v in evaluation.items()}


def _mean(values) -> float:
    """Mean over seeds of the finite entries ('' when none: e.g. no update in the chunk yet)."""
    values = np.asarray(values)[np.isfinite(values)]
    return float(values.mean()) if values.size else ""


@dataclasses.dataclass
class Log:
    """Where a run's evaluations go (``open_log`` builds it)."""

    logdir: str
    title: str  # the curve's
    step_name: str  # ``Algorithm.step_name``
    seeds: int
    extra_returns: tuple  # ``Trainer.extra_returns``
    metric_names: tuple  # ``Trainer.metric_names``
    csv: logger.CsvLog | None  # process 0's
    board: logger.TensorBoard | None  # process 0's
    progress: logger.Progress | None  # verbose runs'
    t_start: float

    @property
    def csv_path(self) -> str:
        return os.path.join(self.logdir, "metrics.csv")


def open_log(logdir: str, trainer: trainer_lib.Trainer, *, title: str, step_name: str, seeds: int, total_steps: int,
         step: int, resume: bool, primary: bool, verbose: bool) -> Log:  # fmt: skip
    """The run's logs from ``step`` (on resume, rows and events past it are dropped)."""
    columns = ["step", *[f"return_seed{s}" for s in range(seeds)], "return_mean"]
    columns += [f"{name}_mean" for name in trainer.extra_returns]
    columns += [*trainer.metric_names, "steps_per_sec", "wall_s"]  # metrics: means over seeds
    resume_step = step if resume else None
    csv_log = logger.CsvLog(os.path.join(logdir, "metrics.csv"), columns, resume_step=resume_step) if primary else None
    board = logger.TensorBoard(logdir, resume_step=resume_step) if primary else None
    progress = logger.Progress(total_steps, step, unit=step_name) if verbose else None
    return Log(
        logdir, title, step_name, seeds, tuple(trainer.extra_returns), tuple(trainer.metric_names),
        csv_log, board, progress, time.perf_counter(),
    )  # fmt: skip


def closing(log: Log):
    """Closes the TensorBoard writer at the end of the block (process 0)."""
    return contextlib.closing(log.board) if log.board is not None else contextlib.nullcontext()


def record(log: Log, trainer: trainer_lib.Trainer, state, step: int, metrics: dict, rate: float | None):
    """Evaluates (every process: the evaluation may gather) and logs one row; returns the returns [S]."""
    evaluation = evaluate(trainer, state, step)
    returns = evaluation["return"]  # [S]
    row = {"step": step, "return_mean": float(returns.mean()), "steps_per_sec": rate}
    row.update({f"return_seed{s}": float(r) for s, r in enumerate(returns)})
    row.update({f"{name}_mean": float(evaluation[name].mean()) for name in log.extra_returns})
    row.update({k: _mean(metrics[k]) for k in log.metric_names if k in metrics})
    row["wall_s"] = round(time.perf_counter() - log.t_start, 1)
    if log.csv is not None:
        log.csv.write(row)
        log.board.write(step, row)
        png = os.path.join(log.logdir, "curve.png")
        logger.plot_curves(log.csv_path, png, log.title, log.seeds, log.extra_returns, log.step_name)
    return returns


def show_progress(log: Log, step: int, returns, rate: float | None) -> None:
    """The progress line: steps, speed, ETA and the last evaluation's mean return (verbose runs)."""
    if log.progress is not None:
        msg = f"last eval return {np.mean(returns):.1f}" if returns is not None else "no evaluation yet"
        log.progress.update(step, msg, rate)
