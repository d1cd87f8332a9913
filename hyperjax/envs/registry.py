"""Environment registry: ``make(name, backend=..., episode_length=...)``.

Names: ``pendulum`` (pure JAX, fast on CPU) and every Brax environment (``ant``,
``halfcheetah``, ``hopper``, ``walker2d``, ...), built here; and the native-physics Gymnasium
tasks (``Ant-v5``, ...: ``NATIVE_ENVS``), built by ``envs/native.py`` and trained by the host
loop; and the meta-RL task families (``META_ENVS``: ``point_nav``, ``halfcheetah_vel``, ...), built by
``envs/meta.py`` through ``EnvSpec.make_meta`` (an env plus its ``TaskFamily``). Every env built here
is a ``brax.envs.base.Env`` wrapped in Brax's ``EpisodeWrapper`` (time limit;
``state.info['truncation']`` marks time-outs, which the learner bootstraps through). Actions are in
[-1, 1].

Two settings pick what a MuJoCo task is (docs/authors_code.md, Environments):
- ``preset`` (``--env_preset``) picks the *task*: ``paper`` the authors' observations, rewards, resets and
  terminations; ``brax`` Brax's env as Brax ships it.
- ``physics`` (``--physics``) picks the *model files*: ``gym`` Gym's (``hopper.xml``, ``walker2d.xml``,
  ``half_cheetah.xml``, ``ant.xml`` from Gymnasium, loaded as they are onto MJX, with Gym v2's reset
  noise, frame_skip and healthy ranges: ``envs/gym_tasks.py``), what the authors' envs stepped;
  ``brax`` Brax's (lighter contacts and solver settings, faster), as hyperjax ran before: the
  ``paper`` Ant and meta tasks as ``envs/locomotion.py``'s Brax subclasses, the other single tasks as
  Brax's envs. Unset, it follows the preset: ``paper`` runs ``gym`` for the paper's robots (hopper,
  walker2d, halfcheetah, ant and the MuJoCo meta tasks) and ``brax`` for any other Brax env; ``brax``
  runs ``brax``. ``gym`` needs the ``paper`` preset (Brax's envs exist only on Brax's models) and
  the ``mjx`` backend.
- ``contact_forces`` (Ant tasks only): ``zero`` (unset with ``gym``: what mujoco-py 2.x gave the
  authors) or ``mujoco`` (MJX's ``cfrc_ext``; unset with ``brax``). See ``envs/gym_models.py``.
"""

import dataclasses

import brax.envs
import jax
from brax.envs import base
from brax.envs.wrappers import training as brax_wrappers

from hyperjax.envs import gym_models, gym_tasks, locomotion, meta, native, native_meta, pendulum

BACKENDS = ("mjx", "generalized", "positional", "spring")
# a run's --backend: Brax's, or for the MuJoCo meta tasks 'native' (MuJoCo's C engine on the host:
# envs/native_meta.py), or 'auto' (native for those tasks on a machine without an accelerator, else mjx)
NATIVE_META_ENVS = tuple(native_meta.FAMILIES)
RUN_BACKENDS = (*BACKENDS, "native", "auto")
# Default backend: see WORKSPACE.md ("Environments") for the measured steps/s that chose it.
DEFAULT_BACKEND = "mjx"
PRESETS = ("paper", "brax")
PHYSICS = meta.PHYSICS
CONTACT_FORCES = gym_models.CONTACT_FORCES
_BRAX_ENVS = tuple(sorted(brax.envs._envs))  # noqa: SLF001 - brax exposes no public list
NATIVE_ENVS = native.ENVS
META_ENVS = tuple(meta.FAMILIES)
ENVS = ("pendulum", *_BRAX_ENVS, *NATIVE_ENVS, *META_ENVS)
DEFAULT_EPISODE_LENGTH = {"pendulum": 200} | {name: f.default_episode_length for name, f in meta.FAMILIES.items()}

# docs/authors_code.md (Environments): the authors' single-task Ant (no control cost, survive bonus 1, healthy
# torso height in [0.2, 1.0], contact cost and the 111-dim observation with contact forces), on MJX only.
_PAPER_ENVS = {"ant": locomotion.PaperAnt}
# the names physics 'gym' has: the paper's four robots and the MuJoCo meta tasks, and each one's robot
_ROBOT = {name: name for name in gym_tasks.SINGLE_TASK} | {
    name: name.split("_")[0] for name in meta.FAMILIES if name != "point_nav"
}
GYM_TASKS = tuple(_ROBOT)
_BRAX_FILES = {"hopper": "hopper.xml", "walker2d": "walker2d.xml", "halfcheetah": "half_cheetah.xml", "ant": "ant.xml"}


def resolve_physics(name: str, preset: str = "paper", physics: str | None = None) -> str:
    """``physics``, or unset: ``gym`` for the ``paper`` preset's MuJoCo tasks (``GYM_TASKS``), else ``brax``."""
    if physics is not None:
        return physics
    return "gym" if preset == "paper" and name in GYM_TASKS else "brax"


def resolve_contact_forces(physics: str, contact_forces: str | None = None) -> str:
    """``contact_forces``, or unset: the physics' own (``gym``: ``zero``; ``brax``: ``mujoco``)."""
    return contact_forces or meta.DEFAULT_CONTACT_FORCES[physics]


def resolve_backend(name: str, backend: str) -> str:
    """``backend``, or for ``auto``: ``native`` for the MuJoCo meta tasks (``NATIVE_META_ENVS``) when JAX
    runs on the CPU (MuJoCo's C engine steps them ~10x faster there than MJX), else ``mjx``."""
    if backend != "auto":
        return backend
    return "native" if name in NATIVE_META_ENVS and jax.default_backend() == "cpu" else DEFAULT_BACKEND


def default_episode_length(name: str) -> int:
    """200 for pendulum, the family's horizon for meta tasks (200; point_nav 100), 1000 (the paper's) otherwise."""
    return DEFAULT_EPISODE_LENGTH.get(name, 1000)


def is_meta(name: str) -> bool:
    """True for the meta-RL task families (``meta.FAMILIES``), built by ``EnvSpec.make_meta``."""
    return name in META_ENVS


def is_native(name: str) -> bool:
    """True for the Gymnasium tasks stepped by MuJoCo's C engine on the host."""
    return name in NATIVE_ENVS


def check_names(
    name: str, backend: str, preset: str = "paper", physics: str | None = None, contact_forces: str | None = None
) -> None:
    """Raises ValueError (one line) naming a bad env / backend / preset / physics / contact forces and what is valid."""
    if name not in ENVS:
        raise ValueError(f"unknown env {name!r}; valid: {', '.join(ENVS)}")
    if backend not in RUN_BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid: {', '.join(RUN_BACKENDS)}")
    backend = resolve_backend(name, backend)
    if preset not in PRESETS:
        raise ValueError(f"unknown env preset {preset!r}; valid: {', '.join(PRESETS)}")
    if physics is not None and physics not in PHYSICS:
        raise ValueError(f"unknown physics {physics!r}; valid: {', '.join(PHYSICS)}")
    if contact_forces is not None and contact_forces not in CONTACT_FORCES:
        raise ValueError(f"unknown contact_forces {contact_forces!r}; valid: {', '.join(CONTACT_FORCES)}")
    if backend == "native" and not is_native(name):
        if name not in NATIVE_META_ENVS:
            raise ValueError(
                f"backend 'native' steps the MuJoCo meta tasks on MuJoCo's C engine; got env {name!r}, "
                f"valid: {', '.join(NATIVE_META_ENVS)} (Gymnasium's tasks are native by name: {', '.join(NATIVE_ENVS)})"
            )
        if resolve_physics(name, preset, physics) != "gym":
            raise ValueError("backend 'native' steps Gym's model files (physics gym); got physics 'brax', valid: gym")
        return
    if resolve_physics(name, preset, physics) == "gym" and not (is_native(name) or name in ("pendulum", "point_nav")):
        if name not in GYM_TASKS:
            raise ValueError(f"physics 'gym' has no model for env {name!r}; valid envs: {', '.join(GYM_TASKS)}")
        if preset != "paper":
            raise ValueError(
                f"env preset {preset!r} is Brax's own env, on Brax's model files; physics 'gym' needs "
                "env preset 'paper' (valid physics here: brax)"
            )
        if backend != "mjx":
            raise ValueError(
                f"physics 'gym' steps Gym's model files on MJX; got backend {backend!r}, valid: mjx (or physics 'brax')"
            )
        return
    if backend != "mjx" and (name in meta.NEEDS_MJX or (name in _PAPER_ENVS and preset == "paper")):
        also = " or env preset 'brax'" if name in _PAPER_ENVS else ""
        raise ValueError(
            f"env {name!r} (preset {preset!r}) needs contact forces, which only the mjx backend computes; "
            f"got backend {backend!r}, valid: mjx{also}"
        )


def make(
    name: str,
    *,
    backend: str = DEFAULT_BACKEND,
    episode_length: int | None = None,
    preset: str = "paper",
    physics: str | None = None,
    contact_forces: str | None = None,
) -> base.Env:
    """Builds an environment with a time limit.

    Args:
      name: one of ``ENVS`` except the native and meta ones.
      backend: Brax physics backend, one of ``BACKENDS`` (ignored for ``pendulum``).
      episode_length: time limit; default :func:`default_episode_length`.
      preset: ``paper`` (the authors' task where it differs, e.g. Ant: ``locomotion.PaperAnt``, mjx
        only) or ``brax`` (Brax's env as it is).
      physics: ``gym`` (Gym's model files, Gym v2 semantics: ``gym_tasks``) or ``brax`` (Brax's);
        None: :func:`resolve_physics`.
      contact_forces: the Ant's ``zero`` or ``mujoco``; None: :func:`resolve_contact_forces`.

    Raises:
      ValueError: naming the bad argument and the valid choices.
    """
    check_names(name, backend, preset, physics, contact_forces)
    if is_native(name):
        raise ValueError(f"{name} is a native-physics env: build it with hyperjax.envs.native.VecEnv")
    if is_meta(name):
        raise ValueError(f"{name} is a meta task: build it with EnvSpec.make_meta() (or hyperjax.envs.meta.make)")
    episode_length = default_episode_length(name) if episode_length is None else episode_length
    if episode_length < 1:
        raise ValueError(f"episode_length must be >= 1, got {episode_length}")
    physics = resolve_physics(name, preset, physics)
    forces = resolve_contact_forces(physics, contact_forces)
    if name == "pendulum":
        env = pendulum.Pendulum()
    elif physics == "gym":
        env = gym_tasks.SINGLE_TASK[name](**({"contact_forces": forces} if name == "ant" else {}))
    elif preset == "paper" and name in _PAPER_ENVS:
        env = _PAPER_ENVS[name](backend=backend, contact_forces=forces)
    else:
        env = brax.envs.get_environment(name, backend=backend)
    return _TimeLimit(env, episode_length, action_repeat=1)


class _TimeLimit(locomotion.TracedSize, brax_wrappers.EpisodeWrapper):
    """Brax's ``EpisodeWrapper`` whose ``observation_size`` is traced, not run (any env inside)."""


@dataclasses.dataclass(frozen=True)
class EnvSpec:
    """An environment as a run names it; builds it in whichever form its physics needs.

    Attributes:
      name: one of ``ENVS``.
      backend: Brax physics backend (``BACKENDS``; ignored by pendulum and native envs).
      preset: ``paper`` or ``brax`` (``PRESETS``).
      episode_length: time limit; None: the task's default (``default_episode_length``).
      physics: the model files, ``gym`` or ``brax`` (``PHYSICS``); None: the preset's (:func:`resolve_physics`).
      contact_forces: the Ant's, ``zero`` or ``mujoco``; None: the physics' (:func:`resolve_contact_forces`).
    """

    name: str
    backend: str = DEFAULT_BACKEND
    preset: str = "paper"
    episode_length: int | None = None
    physics: str | None = None
    contact_forces: str | None = None

    def __post_init__(self):
        if self.backend == "auto":  # resolved once, where the run is built (it asks JAX for its platform)
            object.__setattr__(self, "backend", resolve_backend(self.name, self.backend))

    def check(self) -> None:
        """Raises ValueError naming a bad name / backend / preset / physics and the valid choices."""
        check_names(self.name, self.backend, self.preset, self.physics, self.contact_forces)

    @property
    def model_kwargs(self) -> dict:
        """``physics`` and ``contact_forces`` resolved, as ``meta.make`` takes them."""
        physics = resolve_physics(self.name, self.preset, self.physics)
        return {"physics": physics, "contact_forces": resolve_contact_forces(physics, self.contact_forces)}

    @property
    def on_host(self) -> bool:
        """True when stepped by MuJoCo's C engine on the host (``make_host``), not in XLA (``make``)."""
        return is_native(self.name) or (self.backend == "native" and is_meta(self.name))

    def make(self) -> base.Env:
        """The ``brax.envs.base.Env`` (pure ``reset``/``step``) with its time limit."""
        return make(
            self.name,
            backend=self.backend,
            episode_length=self.episode_length,
            preset=self.preset,
            physics=self.physics,
            contact_forces=self.contact_forces,
        )

    def make_meta(self, **kwargs) -> tuple[base.Env, meta.TaskFamily]:
        """``(env with its time limit, TaskFamily)`` of a meta task; ``kwargs`` go to its builder (``heading_bug``)."""
        if not is_meta(self.name):
            raise ValueError(f"{self.name} is not a meta task; valid: {', '.join(META_ENVS)}")
        self.check()
        return meta.make(
            self.name, episode_length=self.episode_length, backend=self.backend, **self.model_kwargs, **kwargs
        )

    def make_meta_host(self, num_envs: int, **kwargs) -> native_meta.MetaVecEnv:
        """``num_envs`` envs of a meta task on MuJoCo's C engine (``--backend=native``); ``kwargs`` go to
        ``native_meta.MetaVecEnv`` (``heading_bug``, ``threads``)."""
        if not (is_meta(self.name) and self.on_host):
            raise ValueError(f"{self.name} with backend {self.backend!r} is no native meta task; valid: backend native")
        forces = self.model_kwargs["contact_forces"]
        return native_meta.MetaVecEnv(
            self.name, num_envs, episode_length=self.episode_length, contact_forces=forces, **kwargs
        )

    def make_host(self, num_envs: int) -> native.VecEnv:
        """``num_envs`` host-stepped native envs (``native.VecEnv``)."""
        return native.VecEnv(self.name, num_envs, self.episode_length, self.preset)

    def describe(self) -> str:
        """Its physics and model file, in words (for run headers)."""
        meta_task = ", meta task" if is_meta(self.name) else ""
        if self.name in ("pendulum", "point_nav"):
            return "pure JAX" + meta_task
        if self.on_host and is_meta(self.name):
            robot = gym_models.ROBOTS[_ROBOT[self.name]]
            forces = f", contact forces {self.model_kwargs['contact_forces']}" if _ROBOT[self.name] == "ant" else ""
            return (
                f"MuJoCo's C engine on the host, Gym's {robot.file} (Gym v2 semantics{forces}), meta task; "
                f"policy and learning on {jax.default_backend()}"
            )
        if self.on_host:
            return "native MuJoCo via Gymnasium, host loop"
        if self.name not in _ROBOT:
            return f"Brax {self.backend}"
        kwargs, robot = self.model_kwargs, _ROBOT[self.name]
        forces = f", contact forces {kwargs['contact_forces']}" if robot == "ant" else ""
        if kwargs["physics"] == "gym":
            return f"MJX on Gym's {gym_models.ROBOTS[robot].file} (Gym v2 semantics{forces}){meta_task}"
        return f"Brax {self.backend} on Brax's {_BRAX_FILES[robot]}{forces}{meta_task}"
