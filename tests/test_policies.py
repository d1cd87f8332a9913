"""Policies: shapes (small and paper size), bounds, the tanh-Gaussian log-probability."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hyperjax.nn as hn


def test_tanh_gaussian_policy_and_sampling():
    policy = hn.TanhGaussianPolicy(action_size=3, hidden_sizes=(16, 16))
    obs = jax.random.normal(jax.random.key(0), (5, 4))
    mean, log_std = policy.apply(policy.init(jax.random.key(1), obs), obs)
    assert mean.shape == log_std.shape == (5, 3)
    action, log_prob = hn.sample_tanh_gaussian(jax.random.key(2), mean, log_std)
    assert action.shape == (5, 3) and log_prob.shape == (5,)
    assert bool(jnp.all(jnp.abs(action) < 1))
    # reference: Gaussian log-density of the pre-tanh sample minus log(1 - tanh^2), summed
    std = jnp.exp(log_std)
    x = mean + std * jax.random.normal(jax.random.key(2), mean.shape)
    reference = jnp.sum(jax.scipy.stats.norm.logpdf(x, mean, std) - jnp.log(1 - jnp.tanh(x) ** 2), -1)
    np.testing.assert_allclose(log_prob, reference, rtol=1e-4, atol=1e-4)
    # the same sample from explicit noise (SAC's update draws its noise once per step)
    explicit = hn.tanh_gaussian(mean, log_std, jax.random.normal(jax.random.key(2), mean.shape))
    np.testing.assert_allclose(explicit[0], action, rtol=1e-6)
    np.testing.assert_allclose(explicit[1], log_prob, rtol=1e-6)


def test_deterministic_policy_is_bounded():
    policy = hn.DeterministicPolicy(action_size=2, hidden_sizes=(8,))
    obs = 100 * jax.random.normal(jax.random.key(0), (6, 3))
    action = policy.apply(policy.init(jax.random.key(1), obs), obs)
    assert action.shape == (6, 2) and bool(jnp.all(jnp.abs(action) <= 1))


@pytest.mark.parametrize("cls", [hn.HyperPolicy, hn.ContextMLPPolicy])
@pytest.mark.parametrize("log_std_mode", ["global", "head"])
def test_context_policies(cls, log_std_mode):
    policy = cls(action_size=2, log_std_mode=log_std_mode, hidden_sizes=(8,))
    obs = jax.random.normal(jax.random.key(3), (4, 5))
    ctx = jnp.linspace(0, 1, 4)[:, None]
    variables = policy.init(jax.random.key(0), obs, ctx)
    mean, log_std = jax.jit(policy.apply)(variables, obs, ctx)
    assert mean.shape == log_std.shape == (4, 2)
    other_ctx_mean, _ = policy.apply(variables, obs, ctx[::-1])
    assert not np.allclose(mean, other_ctx_mean)  # the context changes the policy
    if log_std_mode == "global":
        np.testing.assert_array_equal(log_std, 0.0)  # MAML init: std 1, the same for every state
        assert "log_std" in variables["params"]
    else:  # state- and task-dependent: rows differ, and no free log-std vector exists
        assert not np.allclose(log_std[0], log_std[1])
        assert "log_std" not in variables["params"]


def test_policies_at_paper_size():
    obs, ctx = jnp.ones((2, 27)), jnp.ones((2, 1))
    cases = [
        (hn.TanhGaussianPolicy(action_size=8), (obs,)),
        (hn.DeterministicPolicy(action_size=8), (obs,)),
        (hn.HyperPolicy(action_size=8), (obs, ctx)),
        (hn.ContextMLPPolicy(action_size=8), (obs, ctx)),
    ]
    counts = {}
    for policy, args in cases:
        variables = policy.init(jax.random.key(0), *args)
        out = policy.apply(variables, *args)
        mean = out[0] if isinstance(out, tuple) else out
        assert mean.shape == (2, 8)
        counts[type(policy).__name__] = hn.count_params(variables)
    assert counts["TanhGaussianPolicy"] == (27 * 256 + 256) + (256 * 256 + 256) + 2 * (256 * 8 + 8)
    assert counts["ContextMLPPolicy"] == (28 * 100 + 100) + (100 * 100 + 100) + (100 * 8 + 8) + 8
    # Hyper-MAML policy, Ant-Vel dims: primary 6,169,600 + heads 9,725,200 + sigma 8 (the authors' MAML code)
    assert counts["HyperPolicy"] == 6_169_600 + 9_725_200 + 8


def test_bad_policy_input():
    policy = hn.HyperPolicy(action_size=2, hidden_sizes=(8,))
    with pytest.raises(ValueError, match="batch sizes differ"):
        policy.init(jax.random.key(0), jnp.ones((4, 5)), jnp.ones((3, 1)))
