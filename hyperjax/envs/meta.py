"""Meta-RL task families: one environment whose reward depends on a task parameter.

A task is a vector ``[task_size]`` (a goal velocity, a direction, a goal position). It lives in
``state.info['task']``: the env's ``step`` reads it there, and :func:`with_task` puts it there at
every ``reset``, so one jitted program runs any task and ``jax.vmap`` runs many (one env, a
task array). A ``TaskFamily`` says how tasks are drawn (train / test distributions) and how the
authors turn a task into the oracle context a policy sees (docs/authors_code.md, Meta-RL).

Families: ``point_nav`` (pure JAX, for tests) and the paper's MuJoCo tasks on MJX (horizon 200, one task
number each), on Gym's model files with Gym v2 semantics (``physics='gym'``, the default:
``envs/gym_tasks.py``) or on Brax's (``physics='brax'``: ``envs/locomotion.py``):

| family | task | train / test tasks | oracle context |
|---|---|---|---|
| ``halfcheetah_vel`` | goal velocity | U[0, 3] / U[0, 3] | (v - min) / (max - min) over the train pool |
| ``halfcheetah_vel_medium`` | goal velocity | U[0, 2.5] / U[2.5, 3] | as above (test contexts exceed 1) |
| ``halfcheetah_fwd_back`` | direction +-1 | Bernoulli(0.5) signs | d / max(abs(train pool)) |
| ``ant_vel`` | goal velocity | U[0, 3] / U[0, 3] | as halfcheetah_vel |
| ``ant_fwd_back`` | direction +-1 | Bernoulli(0.5) signs | as halfcheetah_fwd_back |

Builder kwargs: ``physics`` (``gym`` or ``brax``), ``backend`` (default ``mjx``; ``gym`` and the Ant
families need it), ``contact_forces`` (Ant: ``zero`` or ``mujoco``; None: the physics' own,
``DEFAULT_CONTACT_FORCES``) and, for ``ant_fwd_back``, ``heading_bug`` (the authors' headings of +-1
radian; docs/authors_code.md #15). Other kwargs are ignored.
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from brax.envs import base
from brax.envs.wrappers import training as brax_wrappers

from hyperjax.envs import gym_tasks, locomotion, point_nav


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


def velocity_context(tasks: jax.Array, train_pool: jax.Array) -> jax.Array:
    """``(v - min) / (max - min)``, min and max over the training pool (authors' bug table #13)."""
    low, high = jnp.min(train_pool, axis=0), jnp.max(train_pool, axis=0)
    return (tasks - low) / (high - low)


def direction_context(tasks: jax.Array, train_pool: jax.Array) -> jax.Array:
    """``d / max(abs(train pool))`` (the authors' direction / max)."""
    return tasks / jnp.max(jnp.abs(train_pool), axis=0)


def uniform_tasks(low: float, high: float) -> Callable[[jax.Array, int], jax.Array]:
    """A sampler of ``[num, 1]`` tasks ~ U[low, high]."""

    def sample(key: jax.Array, num: int) -> jax.Array:
        return jax.random.uniform(key, (num, 1), minval=low, maxval=high)

    return sample


def sign_tasks(key: jax.Array, num: int) -> jax.Array:
    """``[num, 1]`` directions, +1 or -1 with probability 1/2 each."""
    return jnp.where(jax.random.bernoulli(key, 0.5, (num, 1)), 1.0, -1.0).astype(jnp.float32)


_POINT_NAV = TaskFamily(
    name="point_nav",
    task_size=2,
    sample_train=point_nav.sample_goals,
    sample_test=point_nav.sample_goals,
    context=point_nav.goal_context,
    default_episode_length=point_nav.HORIZON,
)

_VEL_0_3 = uniform_tasks(0.0, 3.0)
FAMILIES: dict[str, TaskFamily] = {
    "point_nav": _POINT_NAV,
    "halfcheetah_vel": TaskFamily("halfcheetah_vel", 1, _VEL_0_3, _VEL_0_3, velocity_context),
    "halfcheetah_vel_medium": TaskFamily(
        "halfcheetah_vel_medium", 1, uniform_tasks(0.0, 2.5), uniform_tasks(2.5, 3.0), velocity_context
    ),
    "halfcheetah_fwd_back": TaskFamily("halfcheetah_fwd_back", 1, sign_tasks, sign_tasks, direction_context),
    "ant_vel": TaskFamily("ant_vel", 1, _VEL_0_3, _VEL_0_3, velocity_context),
    "ant_fwd_back": TaskFamily("ant_fwd_back", 1, sign_tasks, sign_tasks, direction_context),
}
# The meta tasks whose reward needs MJX's contact forces (any other backend is refused).
NEEDS_MJX = ("ant_vel", "ant_fwd_back")
PHYSICS = ("gym", "brax")
# contact_forces unset: each physics' own (gym: zero, as mujoco-py 2.x gave the authors; brax: MJX's, as before)
DEFAULT_CONTACT_FORCES = {"gym": "zero", "brax": "mujoco"}


def _cheetah(kind: str) -> Callable[..., base.Env]:
    def build(backend="mjx", physics="gym", contact_forces=None, **_):
        del contact_forces  # no contact term
        if physics == "gym":
            _gym_on_mjx(backend)
            return gym_tasks.HalfCheetahTask(kind)
        return locomotion.HalfCheetahTask(kind, backend=backend)

    return build


def _ant(kind: str) -> Callable[..., base.Env]:
    def build(backend="mjx", physics="gym", contact_forces=None, heading_bug=False, **_):
        if physics == "gym":
            _gym_on_mjx(backend)
            forces = contact_forces or DEFAULT_CONTACT_FORCES["gym"]
            return gym_tasks.AntTask(kind, heading_bug=heading_bug, contact_forces=forces)
        forces = contact_forces or DEFAULT_CONTACT_FORCES["brax"]
        return locomotion.AntTask(kind, backend=backend, heading_bug=heading_bug, contact_forces=forces)

    return build


def _gym_on_mjx(backend: str) -> None:
    if backend != "mjx":
        raise ValueError(f"physics 'gym' steps Gym's model files on MJX; got backend {backend!r}, valid: mjx")


_BUILDERS: dict[str, Callable[..., base.Env]] = {
    "point_nav": lambda **_: point_nav.PointNav(),
    "halfcheetah_vel": _cheetah("vel"),
    "halfcheetah_vel_medium": _cheetah("vel"),
    "halfcheetah_fwd_back": _cheetah("dir"),
    "ant_vel": _ant("vel"),
    "ant_fwd_back": _ant("dir"),
}


def make(name: str, *, episode_length: int | None = None, **kwargs) -> tuple[base.Env, TaskFamily]:
    """``(env with its time limit, family)``; ``kwargs`` go to the family's env (e.g. ``backend``).

    Raises:
      ValueError: an unknown name, naming the valid ones.
    """
    if name not in FAMILIES:
        raise ValueError(f"unknown meta task {name!r}; valid: {', '.join(FAMILIES)}")
    if kwargs.get("physics", "gym") not in PHYSICS:
        raise ValueError(f"unknown physics {kwargs['physics']!r}; valid: {', '.join(PHYSICS)}")
    family = FAMILIES[name]
    length = family.default_episode_length if episode_length is None else episode_length
    return brax_wrappers.EpisodeWrapper(_BUILDERS[name](**kwargs), length, action_repeat=1), family
