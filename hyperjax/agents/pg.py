"""Policy-gradient maths of MAML-TRPO: returns, the linear feature baseline, GAE, Gaussian policies.

As in tristandeleu/pytorch-maml-rl (``LinearFeatureBaseline``, ``BatchEpisodes``,
``weighted_normalize``), the code base the paper's authors built on. Pure functions on one
episode ``[T]`` (or one task's episodes ``[N, T]``), float32, vmappable over episodes, tasks and
seeds. ``mask`` is 1 on the valid steps of an episode and 0 after it ended (1...1 0...0).
Tested against hand-worked numbers in tests/test_pg.py.
"""

import math

import jax
import jax.numpy as jnp


def baseline_features(obs: jax.Array, mask: jax.Array) -> jax.Array:
    """The linear baseline's features ``[o, o^2, t/100, (t/100)^2, (t/100)^3, 1] * mask``.

    Args:
      obs: ``[T, obs]``.
      mask: ``[T]``.

    Returns:
      ``[T, 2 * obs + 4]``; ``t`` is the 1-based step index (the authors' variant of Duan et al.
      2016, supplementary 2). Masked rows are all zero.
    """
    m = mask.astype(jnp.float32)[:, None]
    o = jnp.where(m > 0, obs.astype(jnp.float32), 0.0)
    t = jnp.arange(1, obs.shape[0] + 1, dtype=jnp.float32)[:, None] / 100.0 * m
    return jnp.concatenate([o, o**2, t, t**2, t**3, m], axis=-1)


def fit_linear_baseline(
    features: jax.Array, returns: jax.Array, mask: jax.Array, reg: float = 1e-5, retries: int = 5
) -> jax.Array:
    """Ridge least squares of one task's returns on its features: ``(X^T X + reg I) w = X^T y``.

    Args:
      features: ``[N, T, F]`` (``baseline_features`` of N episodes).
      returns: ``[N, T]``.
      mask: ``[N, T]``; only valid steps enter the fit.
      reg: the first ridge coefficient.
      retries: attempts, with ``reg * 10^k`` for ``k = 0 .. retries - 1`` (the authors' loop of 5).

    Returns:
      ``w [F]`` of the first attempt whose Cholesky solve is finite (a non-positive pivot gives
      NaN, where the authors' ``torch.lstsq`` raised). All attempts are solved at once (F is
      small); if none is finite the weights are NaN, as the authors raise, so the caller's NaN
      check stops the run. ``reg = 0`` stays 0 on retry.
    """
    valid = mask > 0
    x = jnp.where(valid[..., None], features.astype(jnp.float32), 0.0).reshape(-1, features.shape[-1])
    y = jnp.where(valid, returns.astype(jnp.float32), 0.0).reshape(-1)
    xtx, xty = x.T @ x, x.T @ y
    regs = reg * 10.0 ** jnp.arange(retries, dtype=jnp.float32)
    eye = jnp.eye(xtx.shape[0], dtype=jnp.float32)
    chol = jnp.linalg.cholesky(xtx[None] + regs[:, None, None] * eye)  # [retries, F, F]; NaN if not PD
    rhs = jnp.broadcast_to(xty[:, None], (retries, *xty.shape, 1))
    w = jax.scipy.linalg.cho_solve((chol, True), rhs)[..., 0]  # [retries, F]
    finite = jnp.all(jnp.isfinite(w), axis=-1)
    first = jnp.where(jnp.any(finite), jnp.argmax(finite), retries - 1)
    return w[first]


def discounted_returns(rewards: jax.Array, mask: jax.Array, gamma: float) -> jax.Array:
    """``R_t = r_t m_t + gamma R_{t+1}`` with ``R_T = 0`` (``[T]`` each -> ``[T]``; reverse scan)."""

    def step(ret, rm):
        ret = rm + gamma * ret
        return ret, ret

    _, out = jax.lax.scan(step, jnp.zeros((), jnp.float32), jnp.where(mask > 0, rewards, 0.0), reverse=True)
    return out


def gae(rewards: jax.Array, values: jax.Array, mask: jax.Array, gamma: float, lam: float) -> jax.Array:
    """Generalised advantage estimation (``BatchEpisodes.gae``; Schulman et al. 2016).

    Args:
      rewards, values, mask: ``[T]``. Values of masked steps count as 0, and so does the value
        after the last step.

    Returns:
      ``A [T]``: ``delta_t = (r_t + gamma v_{t+1} - v_t) m_t``, ``A_t = delta_t + gamma lam A_{t+1}``,
      times the mask. With ``lam = 1``, ``A = (discounted_returns - values) * mask``.
    """
    valid = mask > 0
    v = jnp.where(valid, values, 0.0)
    v_next = jnp.concatenate([v[1:], jnp.zeros((1,), v.dtype)])
    deltas = jnp.where(valid, rewards + gamma * v_next - v, 0.0)

    def step(adv, delta):
        adv = delta + gamma * lam * adv
        return adv, adv

    _, out = jax.lax.scan(step, jnp.zeros((), deltas.dtype), deltas, reverse=True)
    return jnp.where(valid, out, 0.0)


def weighted_mean(x: jax.Array, mask: jax.Array) -> jax.Array:
    """``sum(x m) / sum(m)`` over all entries (``x``, ``mask`` of one shape -> ``[]``).

    The authors' newer code averages per episode first; the two agree when episodes have equal
    lengths.
    """
    mask = jnp.broadcast_to(mask, x.shape)
    return jnp.sum(jnp.where(mask > 0, x * mask, 0.0)) / jnp.sum(mask)


def normalize(x: jax.Array, mask: jax.Array, eps: float = 1e-8) -> jax.Array:
    """``(x - mean) / (std + eps)`` with the mean and population std of the valid entries only;
    invalid entries are 0 (``[...]`` -> ``[...]``; the authors' ``weighted_normalize``)."""
    mean = weighted_mean(x, mask)
    std = jnp.sqrt(weighted_mean((x - mean) ** 2, mask))
    return jnp.where(mask > 0, (x - mean) / (std + eps), 0.0)


def gaussian_log_prob(mean: jax.Array, log_std: jax.Array, action: jax.Array) -> jax.Array:
    """Log-density of a diagonal Normal, summed over the last axis (``[..., A]`` -> ``[...]``)."""
    z = (action - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z**2 - log_std - 0.5 * math.log(2.0 * math.pi), axis=-1)


def gaussian_kl(mean_p: jax.Array, log_std_p: jax.Array, mean_q: jax.Array, log_std_q: jax.Array) -> jax.Array:
    """``KL(p || q)`` of diagonal Normals, summed over the last axis (``[..., A]`` -> ``[...]``).

    Per dimension ``log(s_q / s_p) + (s_p^2 + (m_p - m_q)^2) / (2 s_q^2) - 1/2``.
    """
    var_ratio = jnp.exp(2.0 * (log_std_p - log_std_q))
    mahalanobis = ((mean_p - mean_q) * jnp.exp(-log_std_q)) ** 2
    return jnp.sum(log_std_q - log_std_p + 0.5 * (var_ratio + mahalanobis) - 0.5, axis=-1)
