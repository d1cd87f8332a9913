"""2-D point navigation to a goal (the MAML paper's toy meta task), pure JAX, for tests.

A point starts at the origin; an action in [-1, 1]^2 moves it by ``0.1 * action``; the reward is
minus the distance to the goal ``state.info['task']`` after the move. Goals ~ U[-0.5, 0.5]^2,
horizon 100, no termination. Standing still scores about -100 * |goal| (-38 on average);
walking to the goal and staying scores above -10.
"""

import jax
import jax.numpy as jnp
from brax.envs import base

HORIZON = 100
STEP = 0.1
GOAL_RANGE = 0.5


def sample_goals(key: jax.Array, num: int) -> jax.Array:
    """``[num, 2]`` goals ~ U[-0.5, 0.5]^2."""
    return jax.random.uniform(key, (num, 2), minval=-GOAL_RANGE, maxval=GOAL_RANGE)


def goal_context(tasks: jax.Array, train_pool: jax.Array) -> jax.Array:
    """Goals scaled to [-1, 1] (the authors' normalisation of goal tasks)."""
    del train_pool
    return tasks / GOAL_RANGE


class PointNav(base.Env):
    """``pipeline_state`` and ``obs`` are the position ``[2]``; the goal is ``info['task']``."""

    def reset(self, rng: jax.Array) -> base.State:
        del rng
        pos, zero = jnp.zeros(2), jnp.zeros(())
        return base.State(pipeline_state=pos, obs=pos, reward=zero, done=zero, metrics={}, info={"task": jnp.zeros(2)})

    def step(self, state: base.State, action: jax.Array) -> base.State:
        pos = state.pipeline_state + STEP * jnp.clip(action, -1.0, 1.0)
        reward = -jnp.linalg.norm(pos - state.info["task"])
        return state.replace(pipeline_state=pos, obs=pos, reward=reward)

    @property
    def observation_size(self) -> int:
        return 2

    @property
    def action_size(self) -> int:
        return 2

    @property
    def backend(self) -> str:
        return "jax"
