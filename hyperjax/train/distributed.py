"""Several hosts as one run, with JAX's own distributed runtime (``jax.distributed``).

Every process runs the same programs over one global ``Mesh`` of all processes' devices; each
owns the seeds on its devices (``trainer.SeedLayout``). Process 0 alone writes logs, prints and
plots; orbax's checkpoints are written by all of them together (each its own shards, on a shared
filesystem). Host-side decisions that depend on a process's own clock or signals (the size of
the next training call, a time-based checkpoint, Ctrl-C) are taken by process 0 and broadcast
(``agree``), so all processes call the same programs in the same order.
"""

import dataclasses

import jax
import numpy as np
from jax.experimental import multihost_utils

from hyperjax import config as cfg


@dataclasses.dataclass
class DistributedConfig:
    """The entry points' flags for several processes (not part of a run's config: a run may resume
    on another number of hosts)."""

    distributed: bool = cfg.field(
        False, "Join a multi-process run (jax.distributed): SLURM, Open MPI and TPU pods are detected as JAX does."
    )
    coordinator_address: str = cfg.field("", "host:port of process 0 (with --distributed; unset: detected).")
    num_processes: int = cfg.field(0, "Processes in the run (with --distributed; 0: detected).", valid=cfg.NON_NEGATIVE)
    process_id: int = cfg.field(-1, "This process's index (with --distributed; -1: detected).")


def initialize_from(config: DistributedConfig) -> None:
    """``initialize`` if ``config.distributed``; a no-op otherwise."""
    if config.distributed:
        initialize(
            config.coordinator_address or None,
            config.num_processes or None,
            None if config.process_id < 0 else config.process_id,
        )


def initialize(coordinator_address: str | None = None, num_processes: int | None = None, process_id: int | None = None):
    """``jax.distributed.initialize``: arguments left None come from the cluster's environment as JAX
    detects it (SLURM, Open MPI, TPU pods, or ``JAX_COORDINATOR_ADDRESS``). Call it first, before
    any other JAX call. On CPUs, collectives across processes go through Gloo."""
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address, num_processes, process_id)


def multi_process() -> bool:
    return jax.process_count() > 1


def is_primary() -> bool:
    """True on the process that writes logs (process 0; the only one without ``jax.distributed``)."""
    return jax.process_index() == 0


def to_host(tree):
    """Every leaf as a NumPy array on this host, gathered from all processes where it is sharded
    over several (a collective: all processes must call it together)."""

    def one(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return np.asarray(multihost_utils.process_allgather(x, tiled=True))
        return np.asarray(x)

    return jax.tree.map(one, tree)


def agree(values: tuple) -> tuple:
    """Process 0's ``values`` (ints/bools) on every process; as given with one process."""
    if not multi_process():
        return values
    agreed = multihost_utils.broadcast_one_to_all(np.asarray(values, np.int64))
    return tuple(type(v)(a) for v, a in zip(values, np.asarray(agreed).tolist(), strict=True))


def describe() -> str:
    """``', 2 processes'`` where there are several, else ``''`` (for a run's header)."""
    return f", {jax.process_count()} processes" if multi_process() else ""
