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
    """SAC hyperparameters; the defaults are the ``paper`` preset (docs/authors_code.md, SAC) on every
    env but the paper's four tasks, whose learning rates (and HalfCheetah's random steps) the preset
    sets per task (``PAPER_LRS``)."""

    actor_lr: float = cfg.field(
        3e-4,
        "Policy Adam learning rate (paper: 1e-4 HalfCheetah, 1e-5 Hopper/Walker2d/Ant, 3e-4 elsewhere).",
        valid=cfg.POSITIVE,
    )
    batch_size: int = cfg.field(256, "Transitions per gradient step (paper: 256).", valid=cfg.POSITIVE_INT)
    alpha_lr: float = cfg.field(
        3e-4, "Temperature Adam learning rate, with --autotune_alpha (paper: the policy's).", valid=cfg.POSITIVE
    )
    tau: float = cfg.field(
        0.005, "Polyak rate of the target critic per update (paper: 0.005).", valid=cfg.UNIT_INTERVAL
    )
    alpha: float = cfg.field(0.2, "Entropy temperature, fixed unless autotuned (paper: 0.2).", valid=cfg.NON_NEGATIVE)
    autotune_alpha: bool = cfg.field(False, "Learn the temperature towards entropy -action_size (paper: off).")
    reward_scale: float = cfg.field(
        1.0, "Rewards are multiplied by this in the TD target (paper: 1).", valid=cfg.POSITIVE
    )
    start_steps: int = cfg.field(
        1001,
        "Env steps of uniformly random actions first (paper: 1001, the authors' loop acts randomly while "
        "i <= --start_timesteps; HalfCheetah 10001).",
        valid=cfg.NON_NEGATIVE,
    )
    plain_critic_lr: float = cfg.field(
        3e-4,
        "Adam learning rate of the critics that are not hypernetworks, where --critic_lr is unset (paper: the "
        "authors' one --lr, which also sets the policy's: 1e-4 HalfCheetah, 1e-5 Hopper/Walker2d/Ant, 3e-4 "
        "elsewhere); hypernetwork critics take 5e-5.",
        valid=cfg.POSITIVE,
    )
    sample_with_replacement: bool = cfg.field(
        False,
        "Replay batches drawn with replacement; off: distinct transitions (paper: off, the SAC code's random.sample).",
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
    critic_optimizer = optax.adam(critic_learning_rate(config))
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

    def pre_tanh_mean(state: SACState, obs: jax.Array) -> jax.Array:
        return actor.apply(state.actor_params, obs[None])[0][0]

    def act(state: SACState, obs: jax.Array) -> jax.Array:
        # tanh(mean): the authors' raw-mean evaluation is a bug (docs/authors_code.md, bug 5)
        return jnp.tanh(pre_tanh_mean(state, obs))

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

    return base.Agent(
        init=init,
        explore=explore,
        act=act,
        update=update,
        q_values=q_values,
        snapshot=snapshot,
        # the authors' evaluation (SAC/main.py:38-39, policy_network.py:51-52): the pre-tanh mean, given to the
        # env unclipped, so the control cost is charged on it (the physics clamps it); logged as
        # return_pre_tanh beside the headline tanh(mean)
        eval_policies={"pre_tanh": pre_tanh_mean},
    )


def critic_learning_rate(config: SACConfig) -> float:
    """``--critic_lr`` if set, else 5e-5 for hypernetwork critics and ``--plain_critic_lr`` for the others
    (the authors' SAC: ``--hyper_lr`` or its one ``--lr``, soft_actor_critic.py:20-26, 40)."""
    if config.critic_lr is not None:
        return config.critic_lr
    return critics.learning_rate(config.critic) if config.critic in critics.HYPER_CRITICS else config.plain_critic_lr


# The authors' per-task settings (SAC/main.py:176-177, its usage notes): alpha 0.2 everywhere (the
# default); --lr 1e-4 and 10,000 start steps on HalfCheetah, --lr 1e-5 on the other tasks. Their --lr
# is the policy's, the plain critics' and the temperature's Adam rate (soft_actor_critic.py:20-26,
# 39-40, 49); the hypernetwork critics keep --hyper_lr 5e-5. The loop acts randomly while
# i <= start_timesteps (main.py:79): 10,001 steps. Other envs (pendulum, ...) keep the code's defaults.
_HALFCHEETAH = dict(actor_lr=1e-4, plain_critic_lr=1e-4, alpha_lr=1e-4, start_steps=10_001)
_OTHER_TASKS = dict(actor_lr=1e-5, plain_critic_lr=1e-5, alpha_lr=1e-5)
PAPER_LRS = {
    **{env: _HALFCHEETAH for env in ("halfcheetah", "HalfCheetah-v5")},
    **{env: _OTHER_TASKS for env in ("hopper", "walker2d", "ant", "Hopper-v5", "Walker2d-v5", "Ant-v5")},
}


ALGORITHM = offpolicy.algorithm(
    "sac",
    SACConfig,
    make_agent,
    # the authors' SAC updates once the buffer holds more than a batch (already while acting randomly)
    first_update=lambda config: config.batch_size + 1,
    run_name=lambda config: config.critic,
    check_config=base.check_critic,
    # the code's argparse defaults on every env (lr 3e-4, 1001 random steps), with the notes' alpha 0.2
    presets={"code_defaults": {}},
    env_presets={"paper": PAPER_LRS},
    # runs begun before these fields existed evaluated from fresh start states and sampled with replacement
    legacy_defaults={"same_eval_starts": False, "sample_with_replacement": True},
)
