"""What a run writes to continue from and to analyse: checkpoints of the whole training state (every
``checkpoint_every`` steps, when ``checkpoint_minutes`` passed since the last, at the end and on a
stop request; orbax keeps the last two) and parameter snapshots (``snapshot_every``: ``Trainer.snapshot``
in ``<logdir>/snapshots/<step>``, all kept). Every write is shielded from signals
(``StopRequests.shielded``), so a Ctrl-C never lands inside orbax's writers."""

import dataclasses
import os
import time
from collections.abc import Callable

from hyperjax.experiments import rundir
from hyperjax.train import checkpoint
from hyperjax.train import trainer as trainer_lib

SNAPSHOTS = "snapshots"  # the folder of a run's parameter snapshots (checkpoint.save / restore)


@dataclasses.dataclass
class Saves:
    """A run's checkpoint and snapshot managers, its save policy, and when it last checkpointed."""

    directory: str  # the checkpoints' folder
    checkpoints: object  # orbax CheckpointManager
    snapshots: object  # orbax CheckpointManager
    config: dict  # saved with each (``runner.config_dict``)
    shielded: Callable  # a context manager: signals wait for the write (``StopRequests.shielded``)
    checkpoint_every: int
    checkpoint_minutes: float  # 0: no time-based checkpoints
    snapshot_every: int  # 0: no snapshots
    total_steps: int
    last_step: int | None = None  # the last checkpoint this run can fall back on (None: none yet)
    last_time: float = 0.0  # when it was written (or the loop began)


def open_saves(logdir: str, config: dict, shielded: Callable, *, checkpoint_every: int, checkpoint_minutes: float,
               snapshot_every: int, total_steps: int) -> Saves:  # fmt: skip
    directory = os.path.join(logdir, rundir.CHECKPOINTS)
    return Saves(
        directory, checkpoint.manager(directory), checkpoint.manager(os.path.join(logdir, SNAPSHOTS), max_to_keep=None),
        config, shielded, checkpoint_every, checkpoint_minutes, snapshot_every, total_steps,
    )  # fmt: skip


def snapshot(saves: Saves, trainer: trainer_lib.Trainer, state, step: int) -> None:
    """The parameters at a ``snapshot_every`` step (a resumed run reaches one again, bit-exactly: kept)."""
    if saves.snapshot_every and step % saves.snapshot_every == 0:
        if step not in saves.snapshots.all_steps():
            with saves.shielded():
                checkpoint.save(saves.snapshots, step, trainer.snapshot(state), saves.config)


def timed_out(saves: Saves) -> bool:
    """``checkpoint_minutes`` have passed since the last checkpoint (or the loop's start)."""
    minutes = (time.perf_counter() - saves.last_time) / 60
    return saves.checkpoint_minutes > 0 and minutes >= saves.checkpoint_minutes


def checkpoint_if_due(saves: Saves, state, step: int, now: bool) -> None:
    """Checkpoints at a ``checkpoint_every`` step, at the end, or ``now`` (timed out, stopping)."""
    if step % saves.checkpoint_every == 0 or step == saves.total_steps or now:
        checkpoint_now(saves, state, step)


def checkpoint_now(saves: Saves, state, step: int, replace: bool = False) -> None:
    """Checkpoints ``state`` as step ``step`` (``replace``: in place of a checkpoint of that step; see
    ``checkpoint.save``)."""
    with saves.shielded():
        checkpoint.save(saves.checkpoints, step, state, saves.config, replace=replace)
    saves.last_step, saves.last_time = step, time.perf_counter()
