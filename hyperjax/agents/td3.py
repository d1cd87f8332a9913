"""TD3 with any registered critic (Fujimoto et al. 2018; the authors' TD3 code).

Per update (docs/authors_code.md, TD3): critic step on
``r + gamma * discount * min Q_target(s', clip(pi_target(s') + clip(N(0, 0.2), +-0.5)))``; every
``policy_delay`` steps an actor step on ``-Q1(s, pi(s))`` and Polyak averaging of both targets.
Networks take the TD3 code base's initialisation (PyTorch's default Linear init for the actor
and plain critics, the TD3 primary-network bound for hypernetworks).
"""

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import optax

from hyperjax import config as cfg
from hyperjax import types
from hyperjax.agents import base, td
from hyperjax.nn import critics, policies
from hyperjax.train import offpolicy


@dataclasses.dataclass
class TD3Config(base.ActorCriticConfig):
    """TD3 hyperparameters; the defaults are the ``paper`` preset (docs/authors_code.md, TD3)."""

    batch_size: int = cfg.field(100, "Transitions per gradient step (paper: 100).", valid=cfg.POSITIVE_INT)
    tau: float = cfg.field(0.005, "Polyak rate of both targets per actor step (paper: 0.005).", valid=cfg.UNIT_INTERVAL)
    policy_delay: int = cfg.field(2, "Critic steps per actor and target step (paper: 2).", valid=cfg.POSITIVE_INT)
    target_noise: float = cfg.field(
        0.2, "Std of the target policy's smoothing noise (paper: 0.2).", valid=cfg.NON_NEGATIVE
    )
    target_noise_clip: float = cfg.field(0.5, "Clip of that noise (paper: 0.5).", valid=cfg.NON_NEGATIVE)
    exploration_noise: float = cfg.field(0.1, "Std of the behaviour noise (paper: 0.1).", valid=cfg.NON_NEGATIVE)
    reward_scale: float = cfg.field(
        1.0, "Rewards are multiplied by this in the TD target (paper: 1).", valid=cfg.POSITIVE
    )
    start_steps: int = cfg.field(
        1000, "Env steps of uniformly random actions, and no updates, first (paper: 1000).", valid=cfg.NON_NEGATIVE
    )


@flax.struct.dataclass
class TD3State:
    actor_params: dict
    critic_params: dict
    target_actor_params: dict
    target_critic_params: dict
    actor_opt: optax.OptState
    critic_opt: optax.OptState


class Losses(NamedTuple):
    """TD3's loss functions (pure; constants closed over).

    critic: ``(critic_params, batch, target [B]) -> (loss, q [2, B])``, sum of the twin MSEs.
    actor: ``(actor_params, critic_params, obs [B, obs]) -> loss``, ``-mean Q1(s, pi(s))``.
    """

    critic: Callable
    actor: Callable


def make_losses(critic: nn.Module, actor: nn.Module) -> Losses:
    def actor_loss(actor_params, critic_params, obs):
        q = critic.apply(critic_params, obs, actor.apply(actor_params, obs))
        return -jnp.mean(q[0])  # Q1, as the authors' code

    return Losses(critic=td.make_critic_loss(critic), actor=actor_loss)


def make_networks(config: TD3Config, action_size: int) -> tuple[nn.Module, nn.Module]:
    """``(critic, actor)`` modules with the TD3 code base's inits (overrides may name another)."""
    critic = critics.make_critic(config.critic, action_size=action_size, **base.critic_overrides(config, "td3"))
    actor = policies.DeterministicPolicy(action_size=action_size, hidden_sizes=tuple(config.actor_hidden_sizes))
    return critic, actor


def make_agent(config: TD3Config, obs_size: int, action_size: int) -> base.Agent:
    """Builds TD3's pure functions for these sizes (config read here, outside jit)."""
    critic, actor = make_networks(config, action_size)
    losses = make_losses(critic, actor)
    actor_optimizer = optax.adam(config.actor_lr)
    critic_optimizer = optax.adam(critics.learning_rate(config.critic, config.critic_lr))

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

    def actor_step(state: TD3State, batch: types.Transition) -> tuple[TD3State, jax.Array]:
        a_loss, grads = jax.value_and_grad(losses.actor)(state.actor_params, state.critic_params, batch.obs)
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
        target_action = actor.apply(state.target_actor_params, batch.next_obs)
        next_action = td.smoothed_action(target_action, noise, noise_clip=config.target_noise_clip)
        next_q = critic.apply(state.target_critic_params, batch.next_obs, next_action)  # [2, B]
        target = td.clipped_double_q_target(
            batch.reward, batch.discount, next_q, gamma=config.gamma, reward_scale=config.reward_scale
        )
        (c_loss, q), grads = jax.value_and_grad(losses.critic, has_aux=True)(state.critic_params, batch, target)
        critic_params, critic_opt = base.apply_gradients(critic_optimizer, state.critic_params, state.critic_opt, grads)
        state = state.replace(critic_params=critic_params, critic_opt=critic_opt)
        # the authors' total_it is step + 1 (TD3.py:267, 307: incremented before the test), so the
        # actor steps on the 2nd, 4th, ... update. `step` is unbatched across seeds, so this stays a
        # real branch under vmap; NaN marks "no actor step" (the runner averages metrics with nanmean)
        state, a_loss = jax.lax.cond(
            (step + 1) % config.policy_delay == 0, actor_step, lambda s, b: (s, jnp.full((), jnp.nan)), state, batch
        )
        return state, {"critic_loss": c_loss, "actor_loss": a_loss, "q": jnp.mean(q)}

    def q_values(state: TD3State, obs: jax.Array, action: jax.Array, target: bool = False) -> jax.Array:
        return critic.apply(state.target_critic_params if target else state.critic_params, obs, action)

    def snapshot(state: TD3State) -> TD3State:
        return state.replace(target_actor_params=None, actor_opt=None, critic_opt=None)

    return base.Agent(init=init, explore=explore, act=act, update=update, q_values=q_values, snapshot=snapshot)


ALGORITHM = offpolicy.algorithm(
    "td3",
    TD3Config,
    make_agent,
    first_update=lambda config: config.start_steps + 1,  # the authors' TD3 trains from t >= start_steps
    run_name=lambda config: config.critic,
    check_config=base.check_critic,
    # the TD3 authors' current defaults (github.com/sfujim/TD3), for comparison with the paper's
    presets={"sfujim": dict(critic="mlp", batch_size=256, start_steps=25_000)},
    legacy_defaults={"same_eval_starts": False},  # runs begun before it evaluated from fresh start states
)
