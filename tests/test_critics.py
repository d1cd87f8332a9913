"""Every registered critic: the contract, paper-size parameter counts, jit/vmap, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hyperjax.nn as hn
from hyperjax.nn import summary

# Tiny overrides so the contract tests compile fast; paper sizes are tested below.
SMALL = {
    "sa_hyper": dict(hidden_sizes=(16,)),
    "as_hyper": dict(hidden_sizes=(16,)),
    "mlp": dict(hidden_sizes=(16, 16)),
    "mlp_small": dict(hidden_sizes=(16,)),
    "mlp_large": dict(hidden_sizes=(32, 32)),
    "resnet_features": dict(hidden_sizes=(16,)),
    "res35": dict(width=16, num_blocks=3),
    "d2rl": dict(width=16),
}
OBS, ACT, B = 5, 3, 7


def _inputs(batch=B, obs=OBS, act=ACT):
    return jax.random.normal(jax.random.key(1), (batch, obs)), jax.random.uniform(jax.random.key(2), (batch, act))


def test_registry_covers_the_paper():
    assert set(hn.CRITICS) == {
        "sa_hyper",
        "as_hyper",
        "mlp",
        "mlp_small",
        "mlp_large",
        "resnet_features",
        "res35",
        "d2rl",
    }
    assert set(SMALL) == set(hn.CRITICS)


@pytest.mark.parametrize("name", list(hn.CRITICS))
def test_contract_jit_vmap_determinism(name):
    critic = hn.make_critic(name, action_size=ACT, **SMALL[name])
    obs, act = _inputs()
    variables = critic.init(jax.random.key(0), obs, act)
    q = jax.jit(critic.apply)(variables, obs, act)
    assert q.shape == (2, B) and q.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(q)))
    # twin critics have independent parameters, hence different values
    assert not np.allclose(q[0], q[1])
    # same key, same parameters (bitwise)
    again = critic.init(jax.random.key(0), obs, act)
    assert all(bool(jnp.array_equal(a, b)) for a, b in zip(jax.tree.leaves(variables), jax.tree.leaves(again)))
    # vmap over an extra leading axis (e.g. seeds or tasks) equals a loop
    obs3 = jnp.stack([obs, 2 * obs, -obs])
    q3 = jax.vmap(critic.apply, in_axes=(None, 0, None))(variables, obs3, act)
    np.testing.assert_allclose(q3[1], critic.apply(variables, 2 * obs, act), rtol=1e-5, atol=1e-6)
    # single critic
    single = hn.make_critic(name, action_size=ACT, num_critics=1, **SMALL[name])
    assert single.apply(single.init(jax.random.key(0), obs, act), obs, act).shape == (1, B)


def _dense(n_in, n_out):
    return n_in * n_out + n_out


def _mlp(n_in, hidden):
    sizes = (n_in, *hidden, 1)
    return sum(_dense(a, b) for a, b in zip(sizes[:-1], sizes[1:]))


def _resnet(n_in, widths, blocks=2):
    total, fan_in = 0, n_in
    for w in widths:
        total += _dense(fan_in, w) + blocks * 2 * _dense(w, w)
        fan_in = w
    return total


def _hyper(meta, base, hidden=256, out=1):
    heads = _dense(1024, base * hidden + 2 * hidden) + _dense(1024, hidden * out + 2 * out)
    return _resnet(meta, (256, 512, 1024)) + heads


def expected_params(name, obs, act):
    """Analytic parameter count of one Q network (written from the paper's architecture)."""
    return {
        "sa_hyper": _hyper(obs, act),
        "as_hyper": _hyper(act, obs),
        "mlp": _mlp(obs + act, (256, 256)),
        "mlp_small": _mlp(obs + act, (256,)),
        "mlp_large": _mlp(obs + act, (2900, 2900)),
        "resnet_features": _resnet(obs, (256, 512, 1024)) + _dense(1024, 10) + _mlp(10 + act, (256,)),
        "res35": _dense(obs + act, 256) + 35 * 2 * _dense(256, 256) + _dense(256, 1),
        "d2rl": _dense(obs + act, 256) + 3 * _dense(256 + obs + act, 256) + _dense(256, 1),
    }[name]


PAPER_DIMS = {"Ant (Brax)": (27, 8), "HalfCheetah": (17, 6)}


def test_paper_size_parameter_counts():
    print("\n" + summary.critic_table(PAPER_DIMS))
    for obs, act in PAPER_DIMS.values():
        counts = summary.critic_param_counts(obs, act)
        for name, count in counts.items():
            assert count == expected_params(name, obs, act), name
    # PAPER_FACTS 9: one SA-Hyper Q network, in closed form, and "about 9M" in the paper
    assert summary.critic_param_counts(27, 8, ("sa_hyper",))["sa_hyper"] == 6_958_594 + 256 * 27 + 262_400 * 8
    assert summary.critic_param_counts(17, 6, ("sa_hyper",))["sa_hyper"] == 8_537_346


@pytest.mark.parametrize("name", list(hn.CRITICS))
def test_paper_size_forward(name):
    """Every critic at its real size, twin, Ant dims: one forward, no grads."""
    critic = hn.make_critic(name, action_size=8)
    obs, act = _inputs(batch=4, obs=27, act=8)
    variables = critic.init(jax.random.key(0), obs, act)
    assert summary.count_params(variables) == 2 * expected_params(name, 27, 8)
    q = critic.apply(variables, obs, act)
    assert q.shape == (2, 4) and bool(jnp.all(jnp.isfinite(q)))


def test_bad_inputs_give_clear_errors():
    critic = hn.make_critic("sa_hyper", action_size=ACT, **SMALL["sa_hyper"])
    obs, act = _inputs()
    with pytest.raises(ValueError, match=r"SAHyperCritic: action has width 4, expected 3"):
        critic.init(jax.random.key(0), obs, jnp.zeros((B, 4)))
    with pytest.raises(ValueError, match=r"batch sizes differ"):
        critic.init(jax.random.key(0), obs, act[:3])
    with pytest.raises(ValueError, match=r"obs must be a \[batch, features\] array"):
        critic.init(jax.random.key(0), obs[0], act)
    with pytest.raises(ValueError, match=r"unknown critic 'mlp_huge'; valid: sa_hyper, as_hyper, mlp"):
        hn.make_critic("mlp_huge", action_size=3)
    with pytest.raises(ValueError, match=r"action_size must be >= 1"):
        hn.make_critic("mlp", action_size=0)
    # after init, a wrong width at apply time is caught too
    variables = critic.init(jax.random.key(0), obs, act)
    with pytest.raises(ValueError, match=r"action has width 2, expected 3"):
        jax.jit(critic.apply)(variables, obs, act[:, :2])
