"""TD3 with any registered critic (Fujimoto et al. 2018; the authors' TD3 code).

Per update (PAPER_FACTS 3.2): critic step on
``r + gamma * discount * min Q_target(s', clip(pi_target(s') + clip(N(0, 0.2), +-0.5)))``; every
``policy_delay`` steps an actor step on ``-Q1(s, pi(s))`` and Polyak averaging of both targets.
"""

import dataclasses
from collections.abc import Sequence

import flax.struct
import jax
import jax.numpy as jnp
import optax

from hyperjax import types
from hyperjax.agents import base
from hyperjax.nn import critics, policies


@dataclasses.dataclass
class TD3Config:
    """TD3 hyperparameters; the defaults are the ``paper`` preset (PAPER_FACTS 3.2)."""

    critic: str = "sa_hyper"  # a name in hyperjax.nn.CRITICS
    critic_overrides: dict = dataclasses.field(default_factory=dict)
    actor_hidden_sizes: Sequence[int] = (256, 256)
    batch_size: int = 100
    critic_lr: float | None = None  # None: 5e-5 for hyper critics, 3e-4 otherwise
    actor_lr: float = 3e-4
    gamma: float = 0.99
    tau: float = 0.005
    policy_delay: int = 2
    target_noise: float = 0.2
    target_noise_clip: float = 0.5
    exploration_noise: float = 0.1
    reward_scale: float = 1.0
    start_steps: int = 1000  # uniformly random actions (and no updates) for the first start_steps


@flax.struct.dataclass
class TD3State:
    actor_params: dict
    critic_params: dict
    target_actor_params: dict
    target_critic_params: dict
    actor_opt: optax.OptState
    critic_opt: optax.OptState


def make_agent(config: TD3Config, obs_size: int, action_size: int) -> base.Agent:
    """Builds TD3's pure functions for these sizes (config read here, outside jit)."""
    overrides = dict(config.critic_overrides)
    if config.critic in critics.HYPER_CRITICS:
        overrides.setdefault("variant", "td3")  # the TD3 code's primary-network init bound
    critic = critics.make_critic(config.critic, action_size=action_size, **overrides)
    actor = policies.DeterministicPolicy(action_size=action_size, hidden_sizes=tuple(config.actor_hidden_sizes))
    actor_optimizer = optax.adam(config.actor_lr)
    critic_optimizer = optax.adam(base.critic_learning_rate(config.critic, config.critic_lr))

    def init(key: jax.Array) -> TD3State:
        actor_key, critic_key = jax.random.split(key)
        obs, act = jnp.zeros((1, obs_size)), jnp.zeros((1, action_size))
        actor_params = actor.init(actor_key, obs)
        critic_params = critic.init(critic_key, obs, act)
        return TD3State(
            actor_params=actor_params,
            critic_params=critic_params,
            target_actor_params=jax.tree.map(jnp.copy, actor_params),
            target_critic_params=jax.tree.map(jnp.copy, critic_params),  # own buffers (donation)
            actor_opt=actor_optimizer.init(actor_params),
            critic_opt=critic_optimizer.init(critic_params),
        )

    def act(state: TD3State, obs: jax.Array) -> jax.Array:
        return actor.apply(state.actor_params, obs[None])[0]

    def explore(state: TD3State, obs: jax.Array, key: jax.Array) -> jax.Array:
        noise = config.exploration_noise * jax.random.normal(key, (action_size,))
        return jnp.clip(act(state, obs) + noise, -1.0, 1.0)

    def critic_loss(critic_params, batch: types.Transition, target: jax.Array):
        q = critic.apply(critic_params, batch.obs, batch.action)
        return jnp.sum(jnp.mean((q - target) ** 2, axis=-1)), q

    def actor_loss(actor_params, critic_params, obs):
        q = critic.apply(critic_params, obs, actor.apply(actor_params, obs))
        return -jnp.mean(q[0])  # Q1, as the authors' code

    def actor_step(state: TD3State, batch: types.Transition) -> tuple[TD3State, jax.Array]:
        a_loss, grads = jax.value_and_grad(actor_loss)(state.actor_params, state.critic_params, batch.obs)
        actor_params, actor_opt = base.apply_gradients(actor_optimizer, state.actor_params, state.actor_opt, grads)
        state = state.replace(
            actor_params=actor_params,
            actor_opt=actor_opt,
            target_actor_params=optax.incremental_update(actor_params, state.target_actor_params, config.tau),
            target_critic_params=optax.incremental_update(state.critic_params, state.target_critic_params, config.tau),
        )
        return state, a_loss

    def update(state: TD3State, batch: types.Transition, key: jax.Array, step: jax.Array):
        noise = config.target_noise * jax.random.normal(key, batch.action.shape)
        noise = jnp.clip(noise, -config.target_noise_clip, config.target_noise_clip)
        next_action = jnp.clip(actor.apply(state.target_actor_params, batch.next_obs) + noise, -1.0, 1.0)
        next_q = jnp.min(critic.apply(state.target_critic_params, batch.next_obs, next_action), axis=0)
        target = jax.lax.stop_gradient(config.reward_scale * batch.reward + config.gamma * batch.discount * next_q)
        (c_loss, q), grads = jax.value_and_grad(critic_loss, has_aux=True)(state.critic_params, batch, target)
        critic_params, critic_opt = base.apply_gradients(critic_optimizer, state.critic_params, state.critic_opt, grads)
        state = state.replace(critic_params=critic_params, critic_opt=critic_opt)
        # `step` is unbatched across seeds, so this stays a real branch under vmap
        state, a_loss = jax.lax.cond(
            step % config.policy_delay == 0, actor_step, lambda s, b: (s, jnp.full((), jnp.nan)), state, batch
        )
        return state, {"critic_loss": c_loss, "actor_loss": a_loss, "q": jnp.mean(q)}

    return base.Agent(init=init, explore=explore, act=act, update=update)
