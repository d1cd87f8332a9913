"""Policy-gradient maths against hand-worked numbers and float64 numpy."""

import math

import jax
import jax.numpy as jnp
import numpy as np

from hyperjax.agents import pg


def test_baseline_features_by_hand():
    obs = jnp.array([[1.0, -2.0], [3.0, 0.5], [9.0, 9.0]])
    f = jax.jit(pg.baseline_features)(obs, jnp.array([1.0, 1.0, 0.0]))
    assert f.shape == (3, 8) and f.dtype == jnp.float32
    np.testing.assert_allclose(f[0], [1, -2, 1, 4, 0.01, 1e-4, 1e-6, 1], rtol=1e-6)
    np.testing.assert_allclose(f[1], [3, 0.5, 9, 0.25, 0.02, 4e-4, 8e-6, 1], rtol=1e-6)
    np.testing.assert_array_equal(f[2], 0.0)  # the episode ended


def _ridge64(x, y, mask, reg):
    """The normal equations in float64 over the valid rows."""
    x = np.asarray(x, np.float64)[np.asarray(mask) > 0]
    y = np.asarray(y, np.float64)[np.asarray(mask) > 0]
    return np.linalg.solve(x.T @ x + reg * np.eye(x.shape[1]), x.T @ y)


def _mask(lengths, t):
    return (np.arange(t)[None] < np.asarray(lengths)[:, None]).astype(np.float32)


def test_fit_linear_baseline_matches_float64_ridge():
    n, t, f = 4, 30, 6
    rng = np.random.default_rng(0)
    mask = _mask([30, 21, 30, 9], t)
    features = rng.normal(size=(n, t, f)).astype(np.float32)  # unmasked on purpose: the fit must mask
    returns = (features @ rng.normal(size=f) + 0.1 * rng.normal(size=(n, t))).astype(np.float32)
    w = jax.jit(pg.fit_linear_baseline)(features, returns, mask)
    expected = _ridge64(features.reshape(-1, f), returns.reshape(-1), mask.reshape(-1), 1e-5)
    np.testing.assert_allclose(w, expected, rtol=1e-4)


def test_fit_linear_baseline_on_baseline_features():
    # The time monomials make X^T X ill-conditioned (cond ~5e4), so float32 normal equations (the
    # authors' too) get the weights to ~1e-3; the fitted values, which the baseline is for, to ~1e-5.
    n, t, obs_dim = 4, 100, 2
    rng = np.random.default_rng(1)
    obs = rng.normal(size=(n, t, obs_dim)).astype(np.float32)
    mask = _mask([100, 80, 55, 100], t)
    returns = (rng.normal(size=(n, t)) + obs[..., 0] - 2.0 * np.arange(t) / t).astype(np.float32)

    @jax.jit
    def fit(obs, returns, mask):
        features = jax.vmap(pg.baseline_features)(obs, mask)
        return features, pg.fit_linear_baseline(features, returns, mask)

    features, w = fit(obs, returns, mask)
    x64 = np.asarray(features, np.float64).reshape(-1, 8)
    expected = _ridge64(x64, returns.reshape(-1), mask.reshape(-1), 1e-5)
    assert np.linalg.norm(w - expected) < 3e-3 * np.linalg.norm(expected)
    np.testing.assert_allclose(x64 @ np.asarray(w, np.float64), x64 @ expected, atol=1e-4)


def test_fit_linear_baseline_retries_when_the_solve_is_nan():
    # Two identical columns: X^T X = [[4,4,10],[4,4,10],[10,10,30]] is singular, and a reg below
    # float32's resolution at 4 leaves it exactly so: the Cholesky pivot is 0 and the solve NaN.
    t = np.arange(1.0, 7.0, dtype=np.float32)
    features = np.stack([np.ones(6), np.ones(6), t], axis=-1)[None].astype(np.float32)  # [1, 6, 3]
    mask = _mask([4], 6)
    returns = 2.0 + 3.0 * t[None]
    fit = jax.jit(pg.fit_linear_baseline, static_argnames="retries")
    assert np.all(np.isnan(fit(features, returns, mask, reg=1e-8, retries=1)))  # the first attempt fails
    w = np.asarray(fit(features, returns, mask, reg=1e-8))  # 1e-8, 1e-7 fail; 1e-6 solves
    assert np.all(np.isfinite(w))
    np.testing.assert_allclose(features[0, :4] @ w, returns[0, :4], rtol=1e-5)
    np.testing.assert_allclose(w[0] + w[1], 2.0, rtol=1e-5)
    np.testing.assert_allclose(w[2], 3.0, rtol=1e-5)


def test_discounted_returns_and_gae_by_hand():
    r = jnp.array([1.0, 2.0, 3.0, 4.0])
    v = jnp.array([1.0, 1.0, 2.0, 9.0])
    mask = jnp.array([1.0, 1.0, 1.0, 0.0])  # the episode ends after 3 steps
    ret = jax.jit(pg.discounted_returns, static_argnums=2)(r, mask, 0.5)
    # R2 = 3; R1 = 2 + 0.5*3 = 3.5; R0 = 1 + 0.5*3.5 = 2.75
    np.testing.assert_allclose(ret, [2.75, 3.5, 3.0, 0.0], rtol=1e-6)
    adv = jax.jit(pg.gae, static_argnums=(3, 4))(r, v, mask, 0.5, 0.5)
    # deltas: 1 + 0.5*1 - 1 = 0.5;  2 + 0.5*2 - 1 = 2;  3 + 0 - 2 = 1;  masked: 0
    # A2 = 1;  A1 = 2 + 0.25*1 = 2.25;  A0 = 0.5 + 0.25*2.25 = 1.0625
    np.testing.assert_allclose(adv, [1.0625, 2.25, 1.0, 0.0], rtol=1e-6)
    np.testing.assert_allclose(jax.jit(pg.gae, static_argnums=(3, 4))(r, v, mask, 0.5, 1.0), [1.75, 2.5, 1.0, 0.0])


def test_gae_with_lambda_one_is_returns_minus_values():
    n, t = 3, 12
    rng = np.random.default_rng(2)
    r, v = rng.normal(size=(2, n, t)).astype(np.float32)
    mask = _mask([12, 7, 1], t)

    @jax.jit
    def both(r, v, mask):
        adv = jax.vmap(pg.gae, in_axes=(0, 0, 0, None, None))(r, v, mask, 0.9, 1.0)
        return adv, jax.vmap(pg.discounted_returns, in_axes=(0, 0, None))(r, mask, 0.9)

    adv, ret = both(r, v, mask)
    np.testing.assert_allclose(adv, (ret - v) * mask, rtol=1e-5, atol=1e-5)


def test_normalize_and_weighted_mean_use_valid_entries_only():
    x = jnp.array([[1.0, 2.0, 3.0, 100.0]])
    mask = jnp.array([[1.0, 1.0, 1.0, 0.0]])
    assert float(pg.weighted_mean(x, mask)) == 2.0
    s = math.sqrt(2.0 / 3.0)  # population std of 1, 2, 3
    np.testing.assert_allclose(jax.jit(pg.normalize)(x, mask), [[-1 / s, 0.0, 1 / s, 0.0]], rtol=1e-6)


def test_gaussian_log_prob_closed_form():
    mean = jnp.array([[0.0, 1.0], [0.5, -1.0]])
    log_std = jnp.array([[0.0, math.log(2.0)], [-1.0, 0.3]])
    action = jnp.array([[0.0, 2.0], [0.0, 0.0]])
    lp = jax.jit(pg.gaussian_log_prob)(mean, log_std, action)
    m, s, a = np.asarray(mean, np.float64), np.exp(np.asarray(log_std, np.float64)), np.asarray(action, np.float64)
    density = np.exp(-((a - m) ** 2) / (2 * s**2)) / (s * np.sqrt(2 * np.pi))
    np.testing.assert_allclose(lp, np.log(density).sum(-1), rtol=1e-6)
    # N(0, 1) at 0 plus N(1, 2^2) at 2: -0.5 log(2 pi) + (-1/8 - log 2 - 0.5 log(2 pi))
    np.testing.assert_allclose(lp[0], -math.log(2 * math.pi) - 0.125 - math.log(2.0), rtol=1e-6)


def test_gaussian_kl_zero_for_equal_and_by_hand():
    mean, log_std = jnp.array([[0.3, -1.0]]), jnp.array([[0.2, -0.5]])
    kl = jax.jit(pg.gaussian_kl)
    np.testing.assert_allclose(kl(mean, log_std, mean, log_std), [0.0], atol=1e-7)
    # KL(N(0, 1) || N(1, e^2)) = log e + (1 + 1) / (2 e^2) - 1/2 = 1/2 + e^-2, per dimension
    p = (jnp.zeros((1, 2)), jnp.zeros((1, 2)))
    q = (jnp.ones((1, 2)), jnp.ones((1, 2)))
    np.testing.assert_allclose(kl(*p, *q), [2 * (0.5 + math.exp(-2.0))], rtol=1e-6)
