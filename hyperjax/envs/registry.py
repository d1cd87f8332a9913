"""Environment registry: ``make(name, backend=..., episode_length=...)``.

Names: ``pendulum`` (pure JAX, fast on CPU) and every Brax environment (``ant``,
``halfcheetah``, ``hopper``, ``walker2d``, ...), built here; and the native-physics Gymnasium
tasks (``Ant-v5``, ...: ``NATIVE_ENVS``), built by ``envs/native.py`` and trained by the host
loop; and the meta-RL task families (``META_ENVS``: ``point_nav``, ``halfcheetah_vel``, ...), built by
``envs/meta.py`` through ``EnvSpec.make_meta`` (an env plus its ``TaskFamily``). Every env built here
is a ``brax.envs.base.Env`` wrapped in Brax's ``EpisodeWrapper`` (time limit;
``state.info['truncation']`` marks time-outs, which the learner bootstraps through). Actions are in
[-1, 1].
"""

import dataclasses

import brax.envs
from brax.envs import base
from brax.envs.wrappers import training as brax_wrappers

from hyperjax.envs import locomotion, meta, native, pendulum

BACKENDS = ("mjx", "generalized", "positional", "spring")
# Default backend: see WORKSPACE.md ("Environments") for the measured steps/s that chose it.
DEFAULT_BACKEND = "mjx"
PRESETS = ("paper", "brax")
_BRAX_ENVS = tuple(sorted(brax.envs._envs))  # noqa: SLF001 - brax exposes no public list
NATIVE_ENVS = native.ENVS
META_ENVS = tuple(meta.FAMILIES)
ENVS = ("pendulum", *_BRAX_ENVS, *NATIVE_ENVS, *META_ENVS)
DEFAULT_EPISODE_LENGTH = {"pendulum": 200} | {name: f.default_episode_length for name, f in meta.FAMILIES.items()}

# docs/authors_code.md (Environments): the authors' single-task Ant (no control cost, survive bonus 1, healthy
# torso height in [0.2, 1.0], contact cost and the 111-dim observation with contact forces), on MJX only.
_PAPER_ENVS = {"ant": locomotion.PaperAnt}


def default_episode_length(name: str) -> int:
    """200 for pendulum, the family's horizon for meta tasks (200; point_nav 100), 1000 (the paper's) otherwise."""
    return DEFAULT_EPISODE_LENGTH.get(name, 1000)


def is_meta(name: str) -> bool:
    """True for the meta-RL task families (``meta.FAMILIES``), built by ``EnvSpec.make_meta``."""
    return name in META_ENVS


def is_native(name: str) -> bool:
    """True for the Gymnasium tasks stepped by MuJoCo's C engine on the host."""
    return name in NATIVE_ENVS


def check_names(name: str, backend: str, preset: str = "paper") -> None:
    """Raises ValueError naming a bad env / backend / preset and the valid choices."""
    if name not in ENVS:
        raise ValueError(f"unknown env {name!r}; valid: {', '.join(ENVS)}")
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
    if preset not in PRESETS:
        raise ValueError(f"unknown env preset {preset!r}; valid: {', '.join(PRESETS)}")
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
) -> base.Env:
    """Builds an environment with a time limit.

    Args:
      name: one of ``ENVS`` except the native and meta ones.
      backend: Brax physics backend, one of ``BACKENDS`` (ignored for ``pendulum``).
      episode_length: time limit; default :func:`default_episode_length`.
      preset: ``paper`` (the authors' task where it differs, e.g. Ant: ``locomotion.PaperAnt``, mjx
        only) or ``brax`` (Brax's env as it is).

    Raises:
      ValueError: naming the bad argument and the valid choices.
    """
    check_names(name, backend, preset)
    if is_native(name):
        raise ValueError(f"{name} is a native-physics env: build it with hyperjax.envs.native.VecEnv")
    if is_meta(name):
        raise ValueError(f"{name} is a meta task: build it with EnvSpec.make_meta() (or hyperjax.envs.meta.make)")
    episode_length = default_episode_length(name) if episode_length is None else episode_length
    if episode_length < 1:
        raise ValueError(f"episode_length must be >= 1, got {episode_length}")
    if name == "pendulum":
        env = pendulum.Pendulum()
    elif preset == "paper" and name in _PAPER_ENVS:
        env = _PAPER_ENVS[name](backend=backend)
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
    """

    name: str
    backend: str = DEFAULT_BACKEND
    preset: str = "paper"
    episode_length: int | None = None

    def check(self) -> None:
        """Raises ValueError naming a bad name / backend / preset and the valid choices."""
        check_names(self.name, self.backend, self.preset)

    @property
    def on_host(self) -> bool:
        """True when stepped by MuJoCo's C engine on the host (``make_host``), not in XLA (``make``)."""
        return is_native(self.name)

    def make(self) -> base.Env:
        """The ``brax.envs.base.Env`` (pure ``reset``/``step``) with its time limit."""
        return make(self.name, backend=self.backend, episode_length=self.episode_length, preset=self.preset)

    def make_meta(self, **kwargs) -> tuple[base.Env, meta.TaskFamily]:
        """``(env with its time limit, TaskFamily)`` of a meta task; ``kwargs`` go to its builder (``heading_bug``)."""
        if not is_meta(self.name):
            raise ValueError(f"{self.name} is not a meta task; valid: {', '.join(META_ENVS)}")
        self.check()
        return meta.make(self.name, episode_length=self.episode_length, backend=self.backend, **kwargs)

    def make_host(self, num_envs: int) -> native.VecEnv:
        """``num_envs`` host-stepped native envs (``native.VecEnv``)."""
        return native.VecEnv(self.name, num_envs, self.episode_length, self.preset)

    def describe(self) -> str:
        """Its physics, in words (for run headers)."""
        if is_meta(self.name):
            return "pure JAX, meta task" if self.name == "point_nav" else f"Brax {self.backend}, meta task"
        if self.name == "pendulum":
            return "pure JAX"
        if self.on_host:
            return "native MuJoCo via Gymnasium, host loop"
        return f"Brax {self.backend}"
