"""Shared types."""

from typing import NamedTuple

import jax


class Transition(NamedTuple):
    """One transition, or a batch of them (leading ``[B]`` axis).

    ``discount`` is 0 at a true terminal and 1 otherwise (a time-out keeps 1: the learner
    bootstraps through truncations).
    """

    obs: jax.Array  # [obs]
    action: jax.Array  # [act]
    reward: jax.Array  # []
    discount: jax.Array  # []
    next_obs: jax.Array  # [obs]
