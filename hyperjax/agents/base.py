"""The interface every single-task agent implements, and helpers they share."""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import optax

from hyperjax import types
from hyperjax.nn import critics

Metrics = dict[str, jax.Array]


class Agent(NamedTuple):
    """Pure functions over an agent-state pytree (its layout is the agent's own).

    Attributes:
      init: ``key -> state``.
      explore: ``(state, obs [obs], key) -> action [act]``: the behaviour policy.
      act: ``(state, obs [obs]) -> action [act]``: the deterministic evaluation policy.
      update: ``(state, batch: Transition [B], key, step) -> (state, metrics)``; ``step`` is the
        global env step (an unbatched scalar, so seeds vmapped together share control flow).
    """

    init: Callable[[jax.Array], Any]
    explore: Callable[[Any, jax.Array, jax.Array], jax.Array]
    act: Callable[[Any, jax.Array], jax.Array]
    update: Callable[[Any, types.Transition, jax.Array, jax.Array], tuple[Any, Metrics]]


def critic_learning_rate(critic: str, critic_lr: float | None) -> float:
    """The authors' critic lr: 5e-5 for hypernetwork critics, 3e-4 otherwise, unless given."""
    if critic_lr is not None:
        return critic_lr
    return 5e-5 if critic in critics.HYPER_CRITICS else 3e-4


def apply_gradients(optimizer: optax.GradientTransformation, params, opt_state, grads) -> tuple[Any, optax.OptState]:
    """One optimiser step."""
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state
