"""Pure rollouts: a policy run in an environment for a fixed number of steps, as one ``lax.scan``.

``rollout`` starts from ``env.reset(key)`` and returns the whole ``Trajectory``; it is a pure
function of its arguments, so ``jax.vmap`` batches it over episodes, tasks or seeds. Steps after
an episode's end are still simulated (a scan has a fixed length) but are masked out by
``valid_mask``: masking selects, never multiplies, so a NaN the env emits after a terminal cannot
leak into a return.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from brax.envs import base as brax_base

# (params, obs [obs], key) -> action [act]
Policy = Callable[[Any, jax.Array, jax.Array], jax.Array]


class Trajectory(NamedTuple):
    """``T`` consecutive steps of one episode (leading axis ``[T]``; more in front when vmapped).

    Attributes:
      obs: ``[T, obs]`` the observation each action was taken in.
      next_obs: ``[T, obs]`` the observation after the step.
      action: ``[T, act]``.
      reward: ``[T]`` reward of the step.
      done: ``[T]`` 1.0 where the episode ended at this step (terminal or time-out).
      truncation: ``[T]`` 1.0 where it ended by the time limit (learners bootstrap there).
      info: the env state's ``info`` after each step (e.g. task parameters), leaves ``[T, ...]``.
    """

    obs: jax.Array
    next_obs: jax.Array
    action: jax.Array
    reward: jax.Array
    done: jax.Array
    truncation: jax.Array
    info: dict


def rollout(env: brax_base.Env, policy: Policy, params, key: jax.Array, length: int) -> Trajectory:
    """Runs ``policy`` from a fresh ``env.reset`` for ``length`` steps.

    Args:
      env: a ``brax.envs.base.Env`` whose ``info`` holds ``truncation`` (Brax's ``EpisodeWrapper``).
      policy: ``(params, obs, key) -> action``; a deterministic policy ignores its key.
      params: whatever ``policy`` reads (agent state, adapted parameters, ...).
      key: one key; split here into the reset key and one policy key per step.
      length: steps (static).

    Returns:
      The ``Trajectory``, ``[length, ...]``.
    """
    reset_key, policy_key = jax.random.split(key)

    def step(state: brax_base.State, step_key: jax.Array):
        action = policy(params, state.obs, step_key)
        next_state = env.step(state, action)
        out = Trajectory(
            obs=state.obs,
            next_obs=next_state.obs,
            action=action,
            reward=next_state.reward,
            done=next_state.done,
            truncation=next_state.info["truncation"],
            info=next_state.info,
        )
        return next_state, out

    _, trajectory = jax.lax.scan(step, env.reset(reset_key), jax.random.split(policy_key, length))
    return trajectory


def valid_mask(done: jax.Array) -> jax.Array:
    """``[T]`` True for the steps of the first episode: up to and including its first ``done``."""
    ended_before = (jnp.cumsum(done > 0, axis=-1) - (done > 0)) > 0
    return ~ended_before


def episode_return(trajectory: Trajectory) -> jax.Array:
    """The first episode's undiscounted return, ``[]`` (NaN-safe: later steps are selected away)."""
    return jnp.sum(jnp.where(valid_mask(trajectory.done), trajectory.reward, 0.0), axis=-1)
