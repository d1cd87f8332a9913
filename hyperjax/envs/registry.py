"""Environment registry: ``make(name, backend=..., episode_length=...)``.

Names: ``pendulum`` (pure JAX, fast on CPU) and every Brax environment (``ant``,
``halfcheetah``, ``hopper``, ``walker2d``, ...), built here; and the native-physics Gymnasium
tasks (``Ant-v5``, ...: ``NATIVE_ENVS``), built by ``envs/native.py`` and trained by the host
loop. Every env built here is a ``brax.envs.base.Env`` wrapped in Brax's ``EpisodeWrapper``
(time limit; ``state.info['truncation']`` marks time-outs, which the learner bootstraps
through). Actions are in [-1, 1].
"""

import dataclasses

import brax.envs
from brax.envs import base
from brax.envs.wrappers import training as brax_wrappers

from hyperjax.envs import native, pendulum

BACKENDS = ("mjx", "generalized", "positional", "spring")
# Default backend: see WORKSPACE.md ("Environments") for the measured steps/s that chose it.
DEFAULT_BACKEND = "mjx"
PRESETS = ("paper", "brax")
_BRAX_ENVS = tuple(sorted(brax.envs._envs))  # noqa: SLF001 - brax exposes no public list
NATIVE_ENVS = native.ENVS
ENVS = ("pendulum", *_BRAX_ENVS, *NATIVE_ENVS)
DEFAULT_EPISODE_LENGTH = {"pendulum": 200}

# docs/authors_code.md (Environments): the authors' single-task Ant has no control cost, survive bonus 1 and a
# healthy torso height in [0.2, 1.0] (Brax's defaults already match the last two).
_PAPER_KWARGS = {"ant": dict(ctrl_cost_weight=0.0, healthy_reward=1.0, healthy_z_range=(0.2, 1.0))}


def default_episode_length(name: str) -> int:
    """200 for pendulum, 1000 (the paper's) for the MuJoCo tasks."""
    return DEFAULT_EPISODE_LENGTH.get(name, 1000)


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


def make(
    name: str,
    *,
    backend: str = DEFAULT_BACKEND,
    episode_length: int | None = None,
    preset: str = "paper",
) -> base.Env:
    """Builds an environment with a time limit.

    Args:
      name: one of ``ENVS``.
      backend: Brax physics backend, one of ``BACKENDS`` (ignored for ``pendulum``).
      episode_length: time limit; default :func:`default_episode_length`.
      preset: ``paper`` (the authors' reward terms where they differ, e.g. Ant) or ``brax``.

    Raises:
      ValueError: naming the bad argument and the valid choices.
    """
    check_names(name, backend, preset)
    if is_native(name):
        raise ValueError(f"{name} is a native-physics env: build it with hyperjax.envs.native.VecEnv")
    episode_length = default_episode_length(name) if episode_length is None else episode_length
    if episode_length < 1:
        raise ValueError(f"episode_length must be >= 1, got {episode_length}")
    if name == "pendulum":
        env = pendulum.Pendulum()
    else:
        kwargs = _PAPER_KWARGS.get(name, {}) if preset == "paper" else {}
        env = brax.envs.get_environment(name, backend=backend, **kwargs)
    return brax_wrappers.EpisodeWrapper(env, episode_length, action_repeat=1)


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

    def make_host(self, num_envs: int) -> native.VecEnv:
        """``num_envs`` host-stepped native envs (``native.VecEnv``)."""
        return native.VecEnv(self.name, num_envs, self.episode_length, self.preset)

    def describe(self) -> str:
        """Its physics, in words (for run headers)."""
        if self.name == "pendulum":
            return "pure JAX"
        if self.on_host:
            return "native MuJoCo via Gymnasium, host loop"
        return f"Brax {self.backend}"
