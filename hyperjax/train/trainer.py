"""What every trainer is and shares, whatever the algorithm: the ``Trainer`` contract the runner
drives, the ``Setting`` a run hands an algorithm to build one, the seed layout, and the
compiler options of the training programs.
"""

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from hyperjax.envs import registry


class Trainer(NamedTuple):
    """Programs over a training state; the runner needs nothing else.

    Every output is per seed, ``[S, ...]``; the state's own layout is the trainer's (``SeedLayout``).

    Attributes:
      init: ``keys [S] -> state``.
      run_chunk: ``(state, start_step, num_steps) -> (state, metrics)``: ``num_steps`` env steps
        (any count, without recompiling: the runner sizes calls to a few seconds). ``metrics``
        maps each of ``metric_names`` to ``[S]`` means over the call (NaN where nothing was
        measured, e.g. before the first update), plus ``finite [S]``: no NaN/inf in the agent's
        state at the chunk's end. Donates ``state``.
      evaluate: ``(state, step) -> returns [S, E]`` (``E``: episodes, or tasks), or a dict of such
        arrays with ``return`` (the headline) and each of ``extra_returns``.
      programs: the jitted programs by name (``.lower(...).compile()`` them ahead of time, count
        their compilations); which names a trainer has is its own (its docstring lists them).
      metric_names: the names ``run_chunk`` reports, for log columns.
      extra_returns: further evaluation curves (e.g. MAML's ``return_pre``, before adaptation).
      snapshot: ``state -> pytree [S, ...]``, the parameters the analyses read (small: no replay,
        no optimiser state), saved every ``--snapshot_every`` steps; None where there are none.
      step_multiple: ``run_chunk``'s ``start_step`` and ``num_steps`` come in multiples of it
        (e.g. several envs per seed step together).
      heartbeat: a trainer whose calls step envs on the host (a minute per iteration on a CPU)
        beats it between host steps, so the run shows progress and answers a stop within a call
        (``Heartbeat``); None where a call is one XLA program sized by the runner.
    """

    init: Callable[[jax.Array], Any]
    run_chunk: Callable[[Any, int, int], tuple[Any, dict]]
    evaluate: Callable[[Any, int], Any]
    programs: Mapping[str, Callable]
    metric_names: tuple[str, ...]
    extra_returns: tuple[str, ...] = ()
    snapshot: Callable[[Any], Any] | None = None
    step_multiple: int = 1
    heartbeat: "Heartbeat | None" = None


class CallStopped(Exception):
    """A call cut short at a heartbeat: ``state`` after the call's first ``steps`` steps and ``metrics``
    over them (as ``run_chunk``'s; None when ``steps`` is 0). ``partial``: ``state`` also holds part of
    the next step (PEARL's native path: an iteration's data and some of its gradient steps), which the
    next call from that state finishes first; the runner then checkpoints it even where a checkpoint
    of step ``start + steps`` exists. Otherwise, with ``steps`` 0, ``state`` is the state it was given,
    untouched."""

    def __init__(self, state, steps: int, metrics: dict | None, partial: bool = False):
        super().__init__(f"training call stopped after {steps} step(s)")
        self.state, self.steps, self.metrics, self.partial = state, steps, metrics, partial


class Heartbeat:
    """A host-stepped trainer's line to the run during a call. The trainer calls ``beat(what)``
    between host steps (``what``: e.g. "iteration 3: post-adaptation episodes, step 120/200"); when
    the listener the runner set (``listen``) returns True, the trainer raises ``CallStopped`` with
    the last state it completed. A trainer nobody listens to never stops early."""

    def __init__(self):
        self._listener: Callable[[str], bool] | None = None

    def listen(self, listener: Callable[[str], bool] | None) -> None:
        self._listener = listener

    def beat(self, what: str) -> bool:
        """True: stop the call now."""
        return self._listener is not None and bool(self._listener(what))


@dataclasses.dataclass(frozen=True)
class Setting:
    """What a run asks of a trainer (built by the runner from its ``RunConfig``).

    Attributes:
      env: the environment (``envs.registry.EnvSpec``: MJX/Brax/pure JAX, or native physics).
      num_seeds: seeds trained together, ``seed, seed+1, ...``.
      eval_episodes: episodes per seed in ``evaluate``.
      buffer_size: replay capacity per seed (algorithms without replay ignore it).
    """

    env: registry.EnvSpec
    num_seeds: int
    eval_episodes: int
    buffer_size: int


# XLA:CPU's precise (region-based) copy insertion: with the training state donated, the default
# analysis copies the whole critic (72 MB for SA-Hyper) every update before Adam overwrites it
# in place. Results are bitwise identical (tests/test_agents.py); the measured gain is in
# benchmarks/NOTES.md ("changes").
CPU_COMPILER_OPTIONS = {"xla_cpu_copy_insertion_use_region_analysis": True}


def jit_program(fn: Callable, **kwargs) -> Callable:
    """``jax.jit`` with this library's compiler options for the current backend."""
    options = CPU_COMPILER_OPTIONS if jax.default_backend() == "cpu" else None
    return jax.jit(fn, compiler_options=options, **kwargs)


def seed_devices(num_seeds: int) -> int:
    """How many devices a run's seeds are spread over: the most of ``jax.devices()`` that take an
    equal share (``--num_seeds=40`` on 8 GPUs: 8, five seeds each; 6 seeds on 4 devices: 3), the
    same number on every process where there are several (``jax.distributed``).

    Raises ValueError (one line) if the seeds cannot be shared equally by the processes."""
    processes, local = jax.process_count(), jax.local_device_count()
    counts = [
        d
        for d in range(processes, min(jax.device_count(), num_seeds) + 1, processes)
        if num_seeds % d == 0 and d // processes <= local
    ]
    if not counts:
        raise ValueError(
            f"--num_seeds={num_seeds} does not split over {processes} processes; give a multiple of {processes}"
        )
    return max(counts)


def task_devices(num_seeds: int, num_tasks: int) -> int:
    """How many devices each seed's ``num_tasks`` tasks (a meta-learner's meta-batch) are split
    over: of the devices the seeds leave spare, the most that divide ``num_tasks`` (1 seed on 8
    GPUs with 40 tasks: 8, five tasks each); 1 where there is no task axis (``num_tasks`` 0)."""
    seeds, processes = seed_devices(num_seeds), jax.process_count()
    spare = jax.device_count() // seeds
    if num_tasks <= 0:
        return 1

    def fits(t: int) -> bool:
        per_process, rest = divmod(seeds * t, processes)
        return num_tasks % t == 0 and rest == 0 and per_process <= jax.local_device_count()

    return max(t for t in range(1, spare + 1) if fits(t))


def describe_devices(num_seeds: int, num_tasks: int = 0) -> str:
    """What a run's header says of its devices, e.g. ``4 devices (cpu, 2 seed(s) each)`` or
    ``1 device (NVIDIA H200)``; ``num_tasks``: the meta-batch a meta-learner splits over devices."""
    seeds, tasks, device = seed_devices(num_seeds), task_devices(num_seeds, num_tasks), jax.devices()[0]
    n = seeds * tasks
    if n == 1:
        return f"1 device ({device.device_kind})"
    unused = f", {jax.device_count() - n} idle: the work does not split evenly" if n < jax.device_count() else ""
    hosts = f", {jax.process_count()} processes" if jax.process_count() > 1 else ""
    if tasks == 1:
        return f"{n} devices ({device.platform}{hosts}, {num_seeds // seeds} seed(s) each{unused})"
    share = f"{num_seeds // seeds} seed(s) per {tasks} devices, {num_tasks // tasks} of its {num_tasks} tasks on each"
    return f"{n} devices ({device.platform}{hosts}, {share}{unused})"


def _mesh_devices(n: int) -> list:
    """``n`` devices, the same number from each process, process by process."""
    per_process = n // jax.process_count()
    by_process = {}
    for device in jax.devices():
        by_process.setdefault(device.process_index, []).append(device)
    return [d for p in sorted(by_process) for d in by_process[p][:per_process]]


@dataclasses.dataclass(frozen=True)
class SeedLayout:
    """How a run's seeds are laid out, decided once from ``num_seeds``.

    Several seeds are a leading ``[S]`` axis of every state leaf, and the programs are vmapped
    over it. One seed is special: its state has no seed axis and runs the unvmapped programs,
    because XLA:CPU compiles a size-1 ``vmap`` of the SA-Hyper update markedly slower (its
    weight-gradient GEMMs come out transposed and Adam transposes them back; the measurement is
    in benchmarks/NOTES.md). Outputs come as ``[S, ...]`` either way (``to_seeds``).

    With several devices (``seed_devices``), the seed axis is sharded over a one-axis ``Mesh``
    (``seeds``): each program is jitted with ``NamedSharding`` in- and out-shardings, so XLA runs
    each device's seeds where they live, in one program; seeds never communicate. With several
    processes (``train.distributed``) the mesh spans all of them and each holds its own seeds.

    A meta-learner names its task axis (``num_tasks``, the meta-batch): devices the seeds leave
    spare split each seed's tasks (``task_devices``), a second mesh axis ``tasks``. Its per-seed
    functions mark task-batched arrays with ``shard_tasks``; XLA partitions the per-task work and
    turns the means over tasks into all-reduces.
    """

    num_seeds: int
    num_tasks: int = 0

    @property
    def batched(self) -> bool:
        return self.num_seeds > 1

    @functools.cached_property
    def num_devices(self) -> int:
        return seed_devices(self.num_seeds)

    @functools.cached_property
    def num_task_devices(self) -> int:
        return task_devices(self.num_seeds, self.num_tasks)

    @functools.cached_property
    def mesh(self) -> Mesh:
        """``seeds`` x ``tasks`` over this layout's devices."""
        devices = np.array(_mesh_devices(self.num_devices * self.num_task_devices))
        return Mesh(devices.reshape(self.num_devices, self.num_task_devices), ("seeds", "tasks"))

    @functools.cached_property
    def shardings(self) -> tuple[NamedSharding, NamedSharding]:
        """``(by_seed, replicated)`` over this layout's devices (by seed: replicated over ``tasks``)."""
        return NamedSharding(self.mesh, PartitionSpec("seeds")), NamedSharding(self.mesh, PartitionSpec())

    def shard_tasks(self, tree):
        """Inside a per-seed function: leaves with a leading task axis split over the ``tasks``
        devices (those whose length they divide); the identity where tasks are not split."""
        if self.num_task_devices == 1:
            return tree
        by_task = NamedSharding(self.mesh, PartitionSpec("tasks"))

        def one(x):
            if x.shape[0] % self.num_task_devices:
                return x
            if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):  # typed keys: constrain their key data
                return jax.random.wrap_key_data(jax.lax.with_sharding_constraint(jax.random.key_data(x), by_task))
            return jax.lax.with_sharding_constraint(x, by_task)

        return jax.tree.map(one, tree)

    def program(self, one: Callable, in_axes, donate: bool = False, jit: Callable = jit_program) -> Callable:
        """``one`` (per seed) jitted for this layout: vmapped with ``in_axes`` over several seeds,
        as is for one; the state (argument 0) donated if ``donate``; sharded by seed over devices."""
        donate_argnums = 0 if donate else ()
        if not self.batched and self.num_task_devices == 1:
            return jit(one, donate_argnums=donate_argnums)
        if not self.batched:  # one seed, its tasks split: the state replicated over the task devices
            replicated = self.shardings[1]
            return jit(one, donate_argnums=donate_argnums, in_shardings=replicated, out_shardings=replicated)
        if self.num_devices * self.num_task_devices == 1:
            return jit(jax.vmap(one, in_axes), donate_argnums=donate_argnums)
        by_seed, replicated = self.shardings
        axes = in_axes if isinstance(in_axes, tuple) else (in_axes,)
        in_shardings = tuple(by_seed if axis == 0 else replicated for axis in axes)
        batched = jax.vmap(one, in_axes, spmd_axis_name="seeds")  # shard_tasks inside keeps the seed split
        return jit(batched, donate_argnums=donate_argnums, in_shardings=in_shardings, out_shardings=by_seed)

    def init(self, init_one: Callable) -> tuple[Callable, Callable]:
        """``(init, program)``: ``init(keys [S]) -> state`` in this layout, and its jitted program.

        Plain ``jax.jit``: init runs once, and ``jax.eval_shape`` traces it (resume), where
        compiler options are refused. The keys go in replicated (every process holds them all),
        the state comes out sharded by seed, and ``jax.eval_shape(init, keys)`` says so.
        """
        if not self.batched:
            out = self.shardings[1] if self.num_task_devices > 1 else None
            program = jax.jit(init_one, out_shardings=out)
            return (lambda keys: program(keys[0])), program
        if self.num_devices * self.num_task_devices == 1:
            program = jax.jit(jax.vmap(init_one))
        else:
            by_seed, replicated = self.shardings
            program = jax.jit(jax.vmap(init_one), in_shardings=replicated, out_shardings=by_seed)
        return program, program

    def to_seeds(self, tree):
        """This layout's per-seed values -> ``[S, ...]`` (a leading axis of 1 for one seed)."""
        return tree if self.batched else jax.tree.map(lambda x: x[None], tree)

    def from_seeds(self, tree):
        """``[S, ...]`` values (e.g. from host envs) -> this layout."""
        return tree if self.batched else jax.tree.map(lambda x: x[0], tree)


def repeated(step: Callable, metric_names: tuple[str, ...], watched: Callable) -> Callable:
    """A ``run_chunk`` program for algorithms whose training step is one whole iteration.

    Args:
      step: ``state -> (state, metrics)``, one iteration (each of ``metric_names`` a scalar).
      metric_names: the metrics ``step`` reports.
      watched: ``state -> pytree`` checked for NaN/inf at the end (e.g. the parameters).

    Returns:
      ``(state, start_step, num_steps) -> (state, metrics)``: ``num_steps`` iterations in one
      ``lax.fori_loop``, metrics averaged over them, plus ``finite``.
    """

    def run(state, start_step, num_steps):
        del start_step

        def body(_, carry):
            state, sums = carry
            state, metrics = step(state)
            return state, jax.tree.map(jnp.add, sums, metrics)

        zeros = {k: jnp.zeros(()) for k in metric_names}
        state, sums = jax.lax.fori_loop(0, num_steps, body, (state, zeros))
        metrics = {k: v / num_steps for k, v in sums.items()}
        metrics["finite"] = all_finite(watched(state))
        return state, metrics

    return run


def all_finite(tree) -> jax.Array:
    """True when no leaf holds a NaN or inf."""
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))
