"""Pure-JAX pendulum swing-up (the classic Gym ``Pendulum-v1`` dynamics), fast on CPU.

State ``(theta, theta_dot)``, observation ``[cos theta, sin theta, theta_dot]``, one torque in
[-2, 2] (the library's actions in [-1, 1] are scaled by 2). Reward
``-(angle^2 + 0.1 theta_dot^2 + 0.001 u^2)``, so returns are <= 0; a random policy scores about
-1200 per 200-step episode, a good swing-up policy better than -200. It never terminates;
the episode limit is applied by the registry's wrapper.
"""

import jax
import jax.numpy as jnp
from brax.envs import base

MAX_SPEED, MAX_TORQUE, DT, G, M, L = 8.0, 2.0, 0.05, 10.0, 1.0, 1.0


class Pendulum(base.Env):
    """Brax-compatible pendulum; ``pipeline_state`` is ``[theta, theta_dot]``."""

    def reset(self, rng: jax.Array) -> base.State:
        high = jnp.array([jnp.pi, 1.0])
        th = jax.random.uniform(rng, (2,), minval=-high, maxval=high)
        zero = jnp.zeros(())
        return base.State(pipeline_state=th, obs=self._obs(th), reward=zero, done=zero, metrics={}, info={})

    def step(self, state: base.State, action: jax.Array) -> base.State:
        theta, theta_dot = state.pipeline_state
        u = MAX_TORQUE * jnp.clip(action[0], -1.0, 1.0)
        angle = jnp.mod(theta + jnp.pi, 2 * jnp.pi) - jnp.pi
        reward = -(angle**2 + 0.1 * theta_dot**2 + 0.001 * u**2)
        theta_dot = jnp.clip(
            theta_dot + (3 * G / (2 * L) * jnp.sin(theta) + 3.0 / (M * L**2) * u) * DT, -MAX_SPEED, MAX_SPEED
        )
        th = jnp.stack([theta + theta_dot * DT, theta_dot])
        return state.replace(pipeline_state=th, obs=self._obs(th), reward=reward)

    @staticmethod
    def _obs(th: jax.Array) -> jax.Array:
        return jnp.array([jnp.cos(th[0]), jnp.sin(th[0]), th[1]])

    @property
    def observation_size(self) -> int:
        return 3

    @property
    def action_size(self) -> int:
        return 1

    @property
    def backend(self) -> str:
        return "jax"

    @property
    def dt(self) -> float:
        """Seconds per step (Brax's ``PipelineEnv.dt``; videos play at ``1 / dt``)."""
        return DT
