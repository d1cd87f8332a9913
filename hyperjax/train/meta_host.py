"""Rollouts of a meta task stepped on the host (``envs.native_meta.MetaVecEnv``), the policy one jitted call
per env step for all envs: what a meta-learner's collection does when MuJoCo's C engine runs the physics.

Keys follow ``train/rollout.rollout`` vmapped over episodes (as MAML's ``collect_episodes``): an episode's
key splits into a reset key and a policy key, the policy key into one key per step, and the step's
Gaussian noise is ``normal(step_key, (1, act))[0]``. ``plan`` draws the start states (Gym's reset noise,
``native_meta.reset_state``) and all the noise ahead, so with the same keys the host rollouts start where
the MJX ones start and sample with the same noise: the two differ only by the physics engine.
"""

import time
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from hyperjax.envs import native_meta
from hyperjax.train import rollout as rollout_lib


class Starts(NamedTuple):
    """Per episode: ``qpos [..., nq]``, ``qvel [..., nv]`` (start states) and ``noise [..., T, act]``
    (each step's standard normal noise), leading axes as the keys'."""

    qpos: jax.Array
    qvel: jax.Array
    noise: jax.Array


def plan(robot: str, key: jax.Array, num_episodes: int, length: int, action_size: int) -> Starts:
    """One task's ``num_episodes`` episodes from ``key`` (as ``collect_episodes``): ``Starts`` ``[E, ...]``."""

    def one(k):
        reset_key, policy_key = jax.random.split(k)
        qpos, qvel = native_meta.reset_state(robot, reset_key)
        noise = jax.vmap(lambda s: jax.random.normal(s, (1, action_size))[0])(jax.random.split(policy_key, length))
        return Starts(qpos, qvel, noise)

    return jax.vmap(one)(jax.random.split(key, num_episodes))


def sample(mean: jax.Array, log_std: jax.Array, noise: jax.Array) -> jax.Array:
    """A diagonal Gaussian's sample from given standard normal ``noise`` (as MAML's ``act``)."""
    return mean + jnp.exp(log_std) * noise


class Timings:
    """Seconds spent on the host stepping envs (``env_s``) and in the per-step policy calls (``policy_s``)."""

    def __init__(self):
        self.env_s = self.policy_s = 0.0
        self.env_steps = 0


def run(
    env: native_meta.MetaVecEnv,
    act: Callable[[int, np.ndarray], np.ndarray],
    tasks: np.ndarray,
    qpos: np.ndarray,
    qvel: np.ndarray,
    length: int,
    timings: Timings | None = None,
) -> rollout_lib.Trajectory:
    """Every env's episode of ``length`` steps from ``(qpos, qvel)`` with ``tasks`` (``[N, ...]``).

    Args:
      act: ``(t, obs [N, obs]) -> actions [N, act]`` (the jitted policy call; unclipped samples).
      timings: accumulates the env and policy seconds when given.

    Returns:
      A ``Trajectory`` of numpy arrays ``[N, T, ...]`` (``info`` empty). After an episode's end the
      env is not stepped (``MetaVecEnv.step``); ``rollout.valid_mask`` selects those steps away.
    """
    timings = timings or Timings()
    t0 = time.perf_counter()
    obs = env.reset(tasks, qpos, qvel)
    timings.env_s += time.perf_counter() - t0
    n = env.num_envs
    out = {
        "obs": np.zeros((n, length, env.observation_size), np.float32),
        "next_obs": np.zeros((n, length, env.observation_size), np.float32),
        "action": np.zeros((n, length, env.action_size), np.float32),
        **{k: np.zeros((n, length), np.float32) for k in ("reward", "done", "truncation")},
    }
    for t in range(length):
        t0 = time.perf_counter()
        action = np.asarray(act(t, obs))
        t1 = time.perf_counter()
        step = env.step(action)
        timings.policy_s += t1 - t0
        timings.env_s += time.perf_counter() - t1
        out["obs"][:, t], out["action"][:, t], out["next_obs"][:, t] = obs, action, step.obs
        out["reward"][:, t], out["done"][:, t], out["truncation"][:, t] = step.reward, step.done, step.truncation
        obs = step.obs
    timings.env_steps += n * length
    return rollout_lib.Trajectory(info={}, **out)


def episode_returns(trajectory: rollout_lib.Trajectory) -> np.ndarray:
    """``[...]`` undiscounted returns of the first episode (numpy ``rollout.episode_return``)."""
    done = trajectory.done > 0
    valid = (np.cumsum(done, axis=-1) - done) == 0
    return np.sum(np.where(valid, trajectory.reward, 0.0), axis=-1)
