"""Soft Actor-Critic with any registered critic (Haarnoja et al. 2018; the authors' SAC code).

Per update (docs/authors_code.md, SAC): critic step on
``r + gamma * discount * (min Q_target(s', a') - alpha log pi(a'|s'))``, then the actor step on
``alpha log pi - min Q(s, a~pi)`` with the *updated* critic, then (optionally) the temperature
step, then Polyak averaging of the target critic.

For SA-Hyper the actor's loss reaches its parameters only through the action, the dynamic
network's input: ``jax.grad`` w.r.t. the actor parameters runs the primary network forward
only (paper Fig. 2; tested on the jaxpr in tests/test_agents.py).
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
class SACConfig(base.ActorCriticConfig):
    """SAC hyperparameters; the defaults are the ``paper`` preset (docs/authors_code.md, SAC)."""

    batch_size: int = cfg.field(256, "Transitions per gradient step (paper: 256).", valid=cfg.POSITIVE_INT)
    alpha_lr: float = cfg.field(3e-4, "Temperature Adam learning rate, with --autotune_alpha.", valid=cfg.POSITIVE)
    tau: float = cfg.field(
        0.005, "Polyak rate of the target critic per update (paper: 0.005).", valid=cfg.UNIT_INTERVAL
    )
    alpha: float = cfg.field(0.2, "Entropy temperature, fixed unless autotuned (paper: 0.2).", valid=cfg.NON_NEGATIVE)
    autotune_alpha: bool = cfg.field(False, "Learn the temperature towards entropy -action_size (paper: off).")
    reward_scale: float = cfg.field(
        1.0, "Rewards are multiplied by this in the TD target (paper: 1).", valid=cfg.POSITIVE
    )
    start_steps: int = cfg.field(
        1000, "Env steps of uniformly random actions first (paper: 1000).", valid=cfg.NON_NEGATIVE
    )


@flax.struct.dataclass
class SACState:
    actor_params: dict
    critic_params: dict
    target_critic_params: dict
    log_alpha: jax.Array
    actor_opt: optax.OptState
    critic_opt: optax.OptState
    alpha_opt: optax.OptState


class Losses(NamedTuple):
    """SAC's loss functions (pure; constants closed over).

    critic: ``(critic_params, batch, target [B]) -> (loss, q [2, B])``, sum of the twin MSEs.
    actor: ``(actor_params, critic_params, obs [B, obs], alpha, noise [B, act]) -> (loss, log_prob [B])``.
    """

    critic: Callable
    actor: Callable


def make_losses(critic: nn.Module, actor: nn.Module) -> Losses:
    def actor_loss(actor_params, critic_params, obs, alpha, noise):
        mean, log_std = actor.apply(actor_params, obs)
        action, log_prob = policies.tanh_gaussian(mean, log_std, noise)
        q = jnp.min(critic.apply(critic_params, obs, action), axis=0)
        return jnp.mean(alpha * log_prob - q), log_prob

    return Losses(critic=td.make_critic_loss(critic), actor=actor_loss)


def make_networks(config: SACConfig, action_size: int) -> tuple[nn.Module, nn.Module]:
    """``(critic, actor)`` modules for this config."""
    # the SAC code base's inits (critics.VARIANTS); overrides may name another
    critic = critics.make_critic(config.critic, action_size=action_size, **base.critic_overrides(config, "sac"))
    actor = policies.TanhGaussianPolicy(action_size=action_size, hidden_sizes=tuple(config.actor_hidden_sizes))
    return critic, actor


def make_agent(config: SACConfig, obs_size: int, action_size: int) -> base.Agent:
    """Builds SAC's pure functions for these sizes (config read here, outside jit)."""
    critic, actor = make_networks(config, action_size)
    losses = make_losses(critic, actor)
    actor_optimizer = optax.adam(config.actor_lr)
    critic_optimizer = optax.adam(critics.learning_rate(config.critic, config.critic_lr))
    alpha_optimizer = optax.adam(config.alpha_lr)
    target_entropy = -float(action_size)

    def init(key: jax.Array) -> SACState:
        actor_key, critic_key = jax.random.split(key)
        obs, act = jnp.zeros((1, obs_size)), jnp.zeros((1, action_size))
        actor_params = actor.init(actor_key, obs)
        critic_params = critic.init(critic_key, obs, act)
        log_alpha = jnp.log(jnp.asarray(config.alpha, jnp.float32))
        return SACState(
            actor_params=actor_params,
            critic_params=critic_params,
            target_critic_params=jax.tree.map(jnp.copy, critic_params),  # own buffers (donation)
            log_alpha=log_alpha,
            actor_opt=actor_optimizer.init(actor_params),
            critic_opt=critic_optimizer.init(critic_params),
            alpha_opt=alpha_optimizer.init(log_alpha),
        )

    def explore(state: SACState, obs: jax.Array, key: jax.Array) -> jax.Array:
        mean, log_std = actor.apply(state.actor_params, obs[None])
        return policies.sample_tanh_gaussian(key, mean, log_std)[0][0]

    def act(state: SACState, obs: jax.Array) -> jax.Array:
        # tanh(mean): the authors' raw-mean evaluation is a bug (docs/authors_code.md, bug 5)
        return jnp.tanh(actor.apply(state.actor_params, obs[None])[0][0])

    def update(state: SACState, batch: types.Transition, key: jax.Array, step: jax.Array):
        del step
        # one draw for the step's two action samples (s' for the target, s for the actor): one
        # PRNG call instead of a split and two (measured in benchmarks/NOTES.md)
        next_noise, actor_noise = jax.random.normal(key, (2,) + batch.action.shape, batch.action.dtype)
        alpha = jnp.exp(state.log_alpha)

        mean, log_std = actor.apply(state.actor_params, batch.next_obs)
        next_action, next_log_prob = policies.tanh_gaussian(mean, log_std, next_noise)
        next_q = critic.apply(state.target_critic_params, batch.next_obs, next_action)  # [2, B]
        target = td.soft_target(
            batch.reward,
            batch.discount,
            next_q,
            next_log_prob,
            alpha=alpha,
            gamma=config.gamma,
            reward_scale=config.reward_scale,
        )
        (c_loss, q), c_grads = jax.value_and_grad(losses.critic, has_aux=True)(state.critic_params, batch, target)
        critic_params, critic_opt = base.apply_gradients(
            critic_optimizer, state.critic_params, state.critic_opt, c_grads
        )

        (a_loss, log_prob), a_grads = jax.value_and_grad(losses.actor, has_aux=True)(
            state.actor_params, critic_params, batch.obs, alpha, actor_noise
        )
        actor_params, actor_opt = base.apply_gradients(actor_optimizer, state.actor_params, state.actor_opt, a_grads)

        log_alpha, alpha_opt = state.log_alpha, state.alpha_opt
        if config.autotune_alpha:
            alpha_grad = jax.grad(td.temperature_loss)(log_alpha, log_prob, target_entropy)
            log_alpha, alpha_opt = base.apply_gradients(alpha_optimizer, log_alpha, alpha_opt, alpha_grad)

        new_state = SACState(
            actor_params=actor_params,
            critic_params=critic_params,
            target_critic_params=optax.incremental_update(critic_params, state.target_critic_params, config.tau),
            log_alpha=log_alpha,
            actor_opt=actor_opt,
            critic_opt=critic_opt,
            alpha_opt=alpha_opt,
        )
        metrics = {
            "critic_loss": c_loss,
            "actor_loss": a_loss,
            "q": jnp.mean(q),
            "alpha": alpha,
            "entropy": -jnp.mean(log_prob),
        }
        return new_state, metrics

    def q_values(state: SACState, obs: jax.Array, action: jax.Array, target: bool = False) -> jax.Array:
        return critic.apply(state.target_critic_params if target else state.critic_params, obs, action)

    def snapshot(state: SACState) -> SACState:
        return state.replace(actor_opt=None, critic_opt=None, alpha_opt=None)

    return base.Agent(init=init, explore=explore, act=act, update=update, q_values=q_values, snapshot=snapshot)


ALGORITHM = offpolicy.algorithm(
    "sac",
    SACConfig,
    make_agent,
    # the authors' SAC updates once the buffer holds more than a batch (already while acting randomly)
    first_update=lambda config: config.batch_size + 1,
    run_name=lambda config: config.critic,
    check_config=base.check_critic,
)
