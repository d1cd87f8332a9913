"""The two contracts between the training floor and the algorithms above it: ``Agent`` (an
off-policy learner's pure functions, which the loops run) and ``Algorithm`` (a registry entry: what
the runner and the CLI know of an algorithm, down to its ``trainer.Trainer``).

They live here, beside the loops, so that ``hyperjax.train`` never imports ``hyperjax.agents``;
``hyperjax.agents.base`` re-exports both for the agents and their users.
"""

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax

from hyperjax import types
from hyperjax.train import trainer

Metrics = dict[str, jax.Array]


class Agent(NamedTuple):
    """Pure functions over an agent-state pytree (its layout is the agent's own).

    Attributes:
      init: ``key -> state``.
      explore: ``(state, obs [obs], key) -> action [act]``: the behaviour policy.
      act: ``(state, obs [obs]) -> action [act]``: the deterministic evaluation policy.
      update: ``(state, batch: Transition [B], key, step) -> (state, metrics)``; ``step`` counts the
        gradient steps before this one (0 at the first update; an unbatched scalar, so seeds vmapped
        together share control flow).
      q_values: ``(state, obs [B, obs], action [B, act], target: bool) -> [num_critics, B]``: the
        online (or, with ``target``, the target) critics, for the analyses; None if it has none.
      snapshot: ``state -> state`` keeping what ``act`` and ``q_values`` read (optimiser states
        dropped), the parameter snapshots runs keep for the analyses; None if it keeps none.
      eval_policies: further deterministic policies ``(state, obs [obs]) -> action [act]`` by name,
        evaluated beside ``act`` from the same start states at every evaluation and logged as
        ``return_<name>``; their actions go to the env as they are (not clipped to [-1, 1]).
    """

    init: Callable[[jax.Array], Any]
    explore: Callable[[Any, jax.Array, jax.Array], jax.Array]
    act: Callable[[Any, jax.Array], jax.Array]
    update: Callable[[Any, types.Transition, jax.Array, jax.Array], tuple[Any, Metrics]]
    q_values: Callable[[Any, jax.Array, jax.Array, bool], jax.Array] | None = None
    snapshot: Callable[[Any], Any] | None = None
    eval_policies: Mapping[str, Callable[[Any, jax.Array], jax.Array]] = {}


class Algorithm(NamedTuple):
    """An algorithm as the runner and the CLI see it (listed in ``hyperjax.agents.registry``).

    Attributes:
      name: the entry-point name (``python -m hyperjax.experiments.<name>``).
      config: its hyperparameter dataclass; the field defaults are the ``paper`` preset. Each
        field becomes a flag of the same name.
      make_trainer: ``(config, setting: trainer.Setting) -> trainer.Trainer``.
      first_update: ``config -> int``, env steps taken before the first gradient step.
      check: ``(config, setting) -> None``; raises ValueError with a one-line message.
      run_name: ``config -> str``, what tells its runs apart in log folders and titles (e.g. the critic).
      presets: named field overrides over the defaults, ``{"paper": {}}`` at least.
      env_presets: per preset, per environment (``RunConfig.env``), overrides over the preset's
        (e.g. SAC's learning rates: the authors ran one per task); an environment not named keeps
        the preset's values. The CLI applies them for the run's ``--env``, so the run's
        config.json holds the values that ran.
      make_agent: ``(config, obs_size, action_size) -> Agent`` for algorithms built on ``Agent``
        (the off-policy ones), so benchmarks and tests reach the agent through the registry.
      run_defaults: ``RunConfig`` defaults of its entry point where they differ (e.g. MAML's
        400 iterations on ``halfcheetah_vel``).
      legacy_defaults: config fields added after runs of it began, with the value such runs ran with:
        a saved config without the field is compared as if it held this value, so ``--resume`` refuses
        (naming the flag) rather than continue an old run under a new protocol.
      step_name: what one training step is (``env steps``; MAML: ``iterations``), for progress and plots.
      first_call_steps: steps of the first training call (it compiles; later calls are sized to seconds).
      step_multiple: ``config -> int``: training steps come in multiples of it
        (``Trainer.step_multiple``), so the run's step counts must be multiples too.
      tasks_per_seed: ``config -> int``: the task axis a meta-learner splits over the devices its
        seeds leave spare (``trainer.SeedLayout``'s ``num_tasks``); 0: none.
    """

    name: str
    config: type
    make_trainer: Callable[[Any, trainer.Setting], trainer.Trainer]
    first_update: Callable[[Any], int]
    check: Callable[[Any, trainer.Setting], None]
    run_name: Callable[[Any], str]
    presets: Mapping[str, Mapping[str, Any]]
    make_agent: Callable[[Any, int, int], Agent] | None = None
    run_defaults: Mapping[str, Any] = {}
    legacy_defaults: Mapping[str, Any] = {}
    step_name: str = "env steps"
    first_call_steps: int = 10
    step_multiple: Callable[[Any], int] = lambda config: 1
    tasks_per_seed: Callable[[Any], int] = lambda config: 0
    env_presets: Mapping[str, Mapping[str, Mapping[str, Any]]] = {}

    def preset_values(self, preset: str = "paper", env: str | None = None) -> dict[str, Any]:
        """The field values a named preset sets, with its values for ``env`` (``env_presets``) on top."""
        if preset not in self.presets:
            raise ValueError(f"unknown {self.name} preset {preset!r}; valid: {', '.join(self.presets)}")
        return {**self.presets[preset], **self.env_presets.get(preset, {}).get(env, {})}

    def make_config(self, preset: str = "paper", env: str | None = None, **overrides) -> Any:
        """The config of a named preset (for ``env``, if given: ``preset_values``) with ``overrides`` on top."""
        return self.config(**{**self.preset_values(preset, env), **overrides})
