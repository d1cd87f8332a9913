"""A trained run's saved parameters, for the tools that read them (gradient analysis, rendering).

A run folder (``runner.run``) keeps two kinds of saved state:

- checkpoints (``<logdir>/checkpoints/<step>``, the latest two): the whole training
  state. Only its agent part is read here (``checkpoint.restore_part`` under ``AGENT_PATH``): the
  replay buffer, up to GBs, is never loaded.
- parameter snapshots (``<logdir>/snapshots/<step>``, every ``--snapshot_every`` steps, all kept):
  ``Agent.snapshot`` of every seed, ``[S, ...]`` (what ``act`` and ``q_values`` read).
"""

import os

import jax
import numpy as np

from hyperjax.agents import base
from hyperjax.agents import registry as algorithms
from hyperjax.experiments import runner
from hyperjax.train import checkpoint
from hyperjax.train import trainer as trainer_lib

CHECKPOINTS = "checkpoints"  # runner.run's folder of full training-state checkpoints
# where the off-policy trainers' states (loop.TrainState, host_loop.HostTrainState) keep the agent
AGENT_PATH = ".agent"


def load(logdir: str) -> tuple[str, runner.RunConfig, object]:
    """``runner.load_config`` with a one-line ValueError for a missing folder too."""
    if not os.path.isdir(logdir):
        raise ValueError(f"--run={logdir}: no such folder; give the folder of a training run (its --logdir)")
    return runner.load_config(logdir)


def checkpoint_steps(logdir: str) -> list[int]:
    """Steps of the run's complete checkpoints, ascending."""
    return _steps(os.path.join(logdir, CHECKPOINTS))


def snapshot_steps(logdir: str) -> list[int]:
    """Steps of the run's parameter snapshots, ascending."""
    return _steps(os.path.join(logdir, runner.SNAPSHOTS))


def _steps(directory: str) -> list[int]:
    if not os.path.isdir(directory):
        return []
    return sorted(checkpoint.manager(directory, max_to_keep=None).all_steps())


def snapshot_manager(logdir: str):
    """The manager of the run's snapshots; ValueError (one line) if it has none."""
    directory = os.path.join(logdir, runner.SNAPSHOTS)
    if not snapshot_steps(logdir):  # no folder, or an empty one (a run killed before its first snapshot)
        raise ValueError(f"{logdir} has no snapshots; train it with --snapshot_every (paper: 10000)")
    return checkpoint.manager(directory, max_to_keep=None)


def abstract_snapshot(agent: base.Agent, run_config: runner.RunConfig):
    """The shapes of a snapshot of the run's seeds, ``[S, ...]`` (``jax.ShapeDtypeStruct`` leaves)."""
    keys = jax.vmap(jax.random.key)(run_config.seed + np.arange(run_config.num_seeds))
    return jax.eval_shape(jax.vmap(lambda k: agent.snapshot(agent.init(k))), keys)


def make_agent(algo: str, run_config: runner.RunConfig, agent_config) -> base.Agent:
    """The run's agent (``Algorithm.make_agent`` at its env's sizes, ``runner.env_sizes``); ValueError for
    algorithms without one."""
    algorithm = algorithms.get(algo)
    if algorithm.make_agent is None:
        with_agents = ", ".join(name for name, a in algorithms.ALGORITHMS.items() if a.make_agent is not None)
        raise ValueError(f"a {algo} run has no agent to load here (algorithms with one: {with_agents})")
    return algorithm.make_agent(agent_config, *runner.env_sizes(runner.env_spec(run_config)))


def agent_state(logdir: str, agent: base.Agent, run_config: runner.RunConfig, step: int | None = None, seed: int = 0):
    """The agent state of one seed at a saved step, for ``agent.act``.

    Args:
      logdir: the run's folder.
      agent: the run's agent (``make_agent``).
      run_config: the run's ``RunConfig`` (``load``).
      step: a checkpoint's step (the agent's whole state) or else a snapshot's (``Agent.snapshot``);
        None: the latest checkpoint, or the latest snapshot if there is no checkpoint.
      seed: which of the run's seeds, ``0 .. num_seeds - 1`` (seed ``run_config.seed + seed``).

    Returns:
      ``(state, step, kind)``: the state without a seed axis, its step, ``"checkpoint"`` or ``"snapshot"``.

    Raises:
      ValueError: a bad ``seed``, or no checkpoint or snapshot at ``step`` (naming those there are).
    """
    seeds = run_config.num_seeds
    if not 0 <= seed < seeds:
        raise ValueError(f"--seed={seed}: the run has {seeds} seed(s); valid: 0 .. {seeds - 1}")
    checkpoints, snapshots = checkpoint_steps(logdir), snapshot_steps(logdir)
    if step is None:
        if not checkpoints and not snapshots:
            raise ValueError(f"{logdir} holds no checkpoint or snapshot yet; let its training save one")
        step = checkpoints[-1] if checkpoints else snapshots[-1]
    if step in checkpoints:
        keys = jax.vmap(jax.random.key)(run_config.seed + np.arange(seeds))
        init = jax.vmap(agent.init) if trainer_lib.SeedLayout(seeds).batched else lambda k: agent.init(k[0])
        mngr = checkpoint.manager(os.path.join(logdir, CHECKPOINTS), max_to_keep=None)
        state = checkpoint.restore_part(mngr, step, jax.eval_shape(init, keys), AGENT_PATH)
        kind = "checkpoint"
        if seeds == 1:
            return state, step, kind
    elif step in snapshots:
        state = checkpoint.restore(snapshot_manager(logdir), step, abstract_snapshot(agent, run_config))
        kind = "snapshot"
    else:
        listed = ", ".join(map(str, checkpoints)) or "none"
        raise ValueError(
            f"--step={step}: {logdir} has no checkpoint or snapshot at that step; "
            f"checkpoints: {listed}; snapshots: {', '.join(map(str, snapshots)) or 'none'}"
        )
    return jax.tree.map(lambda x: x[seed], state), step, kind
