"""Meta-RL task families: one environment whose reward depends on a task parameter.

A task is a vector ``[task_size]`` (a goal velocity, a direction, a goal position). It lives in
``state.info['task']``: the env's ``step`` reads it there, and :func:`with_task` puts it there at
every ``reset``, so one jitted program runs any task and ``jax.vmap`` runs many (one env, a
task array). A ``TaskFamily`` says how tasks are drawn (train / test distributions) and how the
authors turn a task into the oracle context a policy sees (docs/authors_code.md, Meta-RL).

Families: ``point_nav`` (pure JAX, for tests) and the paper's MuJoCo tasks (see ``FAMILIES``).
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from brax.envs import base
from brax.envs.wrappers import training as brax_wrappers

from hyperjax.envs import point_nav


class TaskFamily(NamedTuple):
    """How a family's tasks are drawn and shown to a policy.

    Attributes:
      name: the env name.
      task_size: width of one task vector.
      sample_train: ``(key, num) -> tasks [num, task_size]`` (the training distribution).
      sample_test: ``(key, num) -> tasks [num, task_size]`` (the test distribution; differs from
        the training one for out-of-distribution families such as ``halfcheetah_vel_medium``).
      context: ``(tasks [N, task_size], train_pool [P, task_size]) -> context [N, task_size]``:
        the oracle context, normalised with statistics of the training pool as the authors do.
      default_episode_length: the horizon (200 for the paper's tasks).
    """

    name: str
    task_size: int
    sample_train: Callable[[jax.Array, int], jax.Array]
    sample_test: Callable[[jax.Array, int], jax.Array]
    context: Callable[[jax.Array, jax.Array], jax.Array]
    default_episode_length: int = 200


def identity_context(tasks: jax.Array, train_pool: jax.Array) -> jax.Array:
    del train_pool
    return tasks


def with_task(env: base.Env, task: jax.Array) -> base.Env:
    """``env`` whose every ``reset`` puts ``task`` into ``state.info['task']`` (``step`` keeps it)."""
    return _WithTask(env, task)


class _WithTask(brax_wrappers.Wrapper):
    def __init__(self, env: base.Env, task: jax.Array):
        super().__init__(env)
        self.task = task

    def reset(self, rng: jax.Array) -> base.State:
        state = self.env.reset(rng)
        return state.replace(info={**state.info, "task": jnp.asarray(self.task, jnp.float32)})


_POINT_NAV = TaskFamily(
    name="point_nav",
    task_size=2,
    sample_train=point_nav.sample_goals,
    sample_test=point_nav.sample_goals,
    context=point_nav.goal_context,
    default_episode_length=point_nav.HORIZON,
)

FAMILIES: dict[str, TaskFamily] = {"point_nav": _POINT_NAV}
_BUILDERS: dict[str, Callable[..., base.Env]] = {"point_nav": lambda **_: point_nav.PointNav()}


def make(name: str, *, episode_length: int | None = None, **kwargs) -> tuple[base.Env, TaskFamily]:
    """``(env with its time limit, family)``; ``kwargs`` go to the family's env (e.g. ``backend``).

    Raises:
      ValueError: an unknown name, naming the valid ones.
    """
    if name not in FAMILIES:
        raise ValueError(f"unknown meta task {name!r}; valid: {', '.join(FAMILIES)}")
    family = FAMILIES[name]
    length = family.default_episode_length if episode_length is None else episode_length
    return brax_wrappers.EpisodeWrapper(_BUILDERS[name](**kwargs), length, action_repeat=1), family
