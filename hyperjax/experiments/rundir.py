"""A run's folder: who holds it (a lock) and what it holds (a resumable run, the logs of a run that
never finished a checkpoint, or nothing), decided before anything is built.

* One process at a time: :class:`Lock` takes an exclusive ``flock`` on ``<logdir>/.lock`` for the
  process's life (the kernel drops it when the process dies, even by SIGKILL); a second process gets
  one line naming the holder.
* A checkpoint counts once complete: orbax writes a step into a temporary folder and renames it to
  its number when done, so :func:`complete_steps` counts the numbered folders only. A run killed
  during its first checkpoint's write therefore holds logs but no checkpoint: a new run (or
  ``--resume``) starts it over from step 0, moving the old logs into ``previous_<time>/`` with one
  line, so nothing is lost and nothing is overwritten.
"""

import fcntl
import json
import os
import socket
import time

CHECKPOINTS = "checkpoints"
# what a run writes besides its checkpoints (TensorBoard's files are events.out.tfevents.*)
LOGS = ("metrics.csv", "config.json", "curve.png", "snapshots", "videos")
LOCK = ".lock"


def complete_steps(logdir: str) -> list[int]:
    """The steps of the run's complete checkpoints, oldest first."""
    directory = os.path.join(logdir, CHECKPOINTS)
    if not os.path.isdir(directory):
        return []
    return sorted(int(name) for name in os.listdir(directory) if name.isdigit())


def saved_algo(logdir: str) -> str | None:
    """The algorithm named in the run's config.json, if there is a readable one."""
    try:
        with open(os.path.join(logdir, "config.json")) as f:
            return json.load(f).get("algo")
    except (OSError, ValueError):
        return None


class Lock:
    """An exclusive lock on a run folder, held until :meth:`release` or the process's end."""

    def __init__(self, logdir: str):
        os.makedirs(logdir, exist_ok=True)
        path = os.path.join(logdir, LOCK)
        self._file = open(path, "a+")  # noqa: SIM115 - held open for the run's life
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.seek(0)
            holder = self._file.read().strip() or "another process"
            self._file.close()
            raise ValueError(f"{logdir} is in use by {holder}; wait for it to end or choose another --logdir") from None
        self._file.seek(0)
        self._file.truncate()
        started = time.strftime("%Y-%m-%d %H:%M:%S")
        self._file.write(f"process {os.getpid()} on {socket.gethostname()} (since {started})")
        self._file.flush()

    def release(self) -> None:
        if not self._file.closed:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()


def decide(logdir: str, algo: str, resume: bool, total_steps: int) -> tuple[bool, list[str]]:
    """What this run does with ``logdir``, decided before anything is built or moved.

    Returns:
      ``(resume, stale)``: whether to restore the latest checkpoint, and the logs of a run that never
      finished a checkpoint, to move aside (:func:`move_aside`) before starting from step 0.

    Raises:
      ValueError: one line, for a folder holding a run this command cannot start or continue.
    """
    steps = complete_steps(logdir)
    other = saved_algo(logdir)
    if steps and other and other != algo:
        raise ValueError(
            f"{logdir} holds a {other} run, not {algo}: resume it with python -m hyperjax.experiments.{other} "
            f"--logdir={logdir} --resume, or choose another --logdir"
        )
    if steps and not resume:
        raise ValueError(f"{logdir} already holds a run; pass --resume to continue it, or choose another --logdir")
    if steps and total_steps < steps[-1]:
        raise ValueError(
            f"--total_steps={total_steps} is below the run's latest checkpoint (step {steps[-1]}); "
            f"give at least {steps[-1]}"
        )
    if steps:
        return True, []
    stale = [name for name in LOGS if os.path.exists(os.path.join(logdir, name))]
    if os.path.isdir(logdir):
        stale += sorted(name for name in os.listdir(logdir) if name.startswith("events.out.tfevents"))
    if resume and not stale:
        raise ValueError(f"--resume: no run in {logdir} (no checkpoint); run once without --resume first")
    return False, stale


def move_aside(logdir: str, stale: list[str], resume: bool) -> str:
    """Moves ``stale`` logs into ``<logdir>/previous_<time>/``; returns the line that says so."""
    aside = os.path.join(logdir, f"previous_{time.strftime('%Y%m%d_%H%M%S')}")
    os.makedirs(aside, exist_ok=True)
    for name in stale:
        os.replace(os.path.join(logdir, name), os.path.join(aside, name))
    why = "--resume: " if resume else ""
    return (
        f"{why}{logdir} holds the logs of a run with no complete checkpoint (stopped before its first save "
        f"finished); starting from step 0, its logs moved to {aside}"
    )
