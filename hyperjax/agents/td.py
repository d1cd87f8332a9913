"""Temporal-difference targets and the critic's regression loss, shared by SAC and TD3.

rlax style: small pure functions on one batch, the time suffix naming the step (``r_t`` is the
reward of the transition into ``s_t``; ``q_t`` the target critics at ``(s_t, a_t)``, the next state).
Tested against hand-computed arrays in tests/test_td.py.
"""

import jax
import jax.numpy as jnp


def td_target(r_t: jax.Array, discount_t: jax.Array, v_t: jax.Array, *, gamma: float, reward_scale: float = 1.0):
    """``reward_scale * r_t + gamma * discount_t * v_t``, no gradient (``[B]`` each).

    ``discount_t`` is 0 at a true terminal and 1 otherwise (time-outs bootstrap).
    """
    return jax.lax.stop_gradient(reward_scale * r_t + gamma * discount_t * v_t)


def soft_target(
    r_t: jax.Array,
    discount_t: jax.Array,
    q_t: jax.Array,
    log_prob_t: jax.Array,
    *,
    alpha: jax.Array | float,
    gamma: float,
    reward_scale: float = 1.0,
) -> jax.Array:
    """SAC's target ``r + gamma d (min_i Q_i(s', a') - alpha log pi(a'|s'))``.

    Args:
      r_t, discount_t: ``[B]``.
      q_t: ``[num_critics, B]`` target critics at ``(s', a')`` with ``a' ~ pi(s')``.
      log_prob_t: ``[B]``, ``log pi(a'|s')``.

    Returns:
      ``[B]``. References: Haarnoja et al. 2018, eq. 3 with the clipped double Q of Fujimoto et al.
    """
    return td_target(r_t, discount_t, jnp.min(q_t, axis=0) - alpha * log_prob_t, gamma=gamma, reward_scale=reward_scale)


def clipped_double_q_target(
    r_t: jax.Array, discount_t: jax.Array, q_t: jax.Array, *, gamma: float, reward_scale: float = 1.0
) -> jax.Array:
    """TD3's target ``r + gamma d min_i Q_i(s', a')`` (``q_t [num_critics, B]`` -> ``[B]``).

    References: Fujimoto et al. 2018, eq. 10.
    """
    return td_target(r_t, discount_t, jnp.min(q_t, axis=0), gamma=gamma, reward_scale=reward_scale)


def smoothed_action(a_t: jax.Array, noise: jax.Array, *, noise_clip: float) -> jax.Array:
    """TD3's target policy smoothing: ``clip(a_t + clip(noise, +-noise_clip), -1, 1)`` (``[B, act]``).

    ``noise`` is already scaled (``target_noise * N(0, 1)``). References: Fujimoto et al. 2018, eq. 14.
    """
    return jnp.clip(a_t + jnp.clip(noise, -noise_clip, noise_clip), -1.0, 1.0)


def q_regression_loss(q_tm1: jax.Array, target: jax.Array) -> jax.Array:
    """Sum over critics of the mean squared TD error: ``q_tm1 [num_critics, B]``, ``target [B]`` -> ``[]``."""
    return jnp.sum(jnp.mean((q_tm1 - target) ** 2, axis=-1))


def make_critic_loss(critic):
    """``(critic_params, batch: Transition [B], target [B]) -> (loss, q [num_critics, B])`` for a
    critic module: its Q values at the batch's (s, a) regressed onto the target."""

    def critic_loss(critic_params, batch, target: jax.Array):
        q = critic.apply(critic_params, batch.obs, batch.action)
        return q_regression_loss(q, target), q

    return critic_loss


def temperature_loss(log_alpha: jax.Array, log_prob: jax.Array, target_entropy: float) -> jax.Array:
    """SAC's temperature loss ``-mean(log_alpha * (log pi + target_entropy))`` (log-probs held fixed).

    Its gradient lowers alpha when the policy's entropy ``-log pi`` is above the target and raises it
    when below. References: Haarnoja et al. 2018b (SAC applications), eq. 18.
    """
    return -jnp.mean(log_alpha * jax.lax.stop_gradient(log_prob + target_entropy))
