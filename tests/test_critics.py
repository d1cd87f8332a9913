"""Every registered critic: the contract, paper-size parameter counts, jit/vmap, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hyperjax.nn as hn
from hyperjax.nn import summary

# Tiny overrides so the contract tests compile fast; paper sizes are tested below.
SMALL = {
    "sa_hyper": dict(hidden_sizes=(16,), latent_widths=(16, 32), blocks_per_width=1),
    "as_hyper": dict(hidden_sizes=(16,), latent_widths=(16, 32), blocks_per_width=1),
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
    # counted from the authors' code: one SA-Hyper Q network, in closed form, and "about 9M" in the paper
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


def _dense_layers(params):
    """Every ``(kernel, bias)`` of a param tree (kernels 2-D, or 3-D with the twin axis in front)."""
    flat = jax.tree_util.tree_flatten_with_path(params)[0]
    kernels = {jax.tree_util.keystr(p[:-1]): x for p, x in flat if p[-1].key == "kernel"}
    biases = {jax.tree_util.keystr(p[:-1]): x for p, x in flat if p[-1].key == "bias"}
    return [(kernels[k], biases[k]) for k in kernels]


@pytest.mark.parametrize("algo", ["sac", "td3"])
def test_baseline_inits_follow_each_code_base(algo):
    """Measured at paper size (Ant dims): SAC's networks xavier with zero biases; TD3's (critic and
    actor) PyTorch's default Linear init, W and b ~ U(+-1/sqrt(fan_in)), as the authors' TD3."""
    from hyperjax.agents import sac, td3

    module = {"sac": sac, "td3": td3}[algo]
    config = {"sac": sac.SACConfig, "td3": td3.TD3Config}[algo](critic="mlp")
    critic, actor = module.make_networks(config, action_size=8)
    obs, act = jnp.zeros((1, 27)), jnp.zeros((1, 8))
    layers = _dense_layers(critic.init(jax.random.key(0), obs, act)) + _dense_layers(actor.init(jax.random.key(1), obs))
    assert len(layers) == 3 + 3 + (1 if algo == "sac" else 0)  # twin critic (stacked), actor (+ SAC's log-std head)
    for kernel, bias in layers:
        fan_in, fan_out = kernel.shape[-2:]
        if algo == "sac":
            assert float(jnp.std(kernel)) == pytest.approx(np.sqrt(2.0 / (fan_in + fan_out)), rel=0.1)
            np.testing.assert_array_equal(bias, 0.0)
        else:
            bound = 1.0 / np.sqrt(fan_in)
            assert float(jnp.std(kernel)) == pytest.approx(bound / np.sqrt(3.0), rel=0.1)
            assert float(jnp.max(jnp.abs(kernel))) <= bound and float(jnp.max(jnp.abs(bias))) <= bound
            if bias.size >= 200:  # enough draws for a spread
                assert float(jnp.std(bias)) == pytest.approx(bound / np.sqrt(3.0), rel=0.15)
            assert bool(jnp.all(bias != 0))  # not zero-initialised


def test_critic_facts_live_in_the_registry():
    assert hn.critics.learning_rate("sa_hyper") == 5e-5 and hn.critics.learning_rate("mlp") == 3e-4
    assert hn.critics.learning_rate("mlp", 1e-3) == 1e-3
    assert set(hn.HYPER_CRITICS) == {"sa_hyper", "as_hyper"}
    # the code base reaches the hypernetwork's primary bound: TD3's is 1/sqrt(2) of SAC's
    obs, act = jnp.zeros((1, 27)), jnp.zeros((1, 8))
    spread = {}
    for variant in ("sac", "td3"):
        critic = hn.make_critic("sa_hyper", action_size=8, variant=variant, num_critics=1)
        kernel = critic.init(jax.random.key(0), obs, act)["params"]["q"]["hyper"]["generator"]["primary"]["Dense_2"][
            "kernel"
        ]
        spread[variant] = float(jnp.max(jnp.abs(kernel)))
    assert spread["td3"] / spread["sac"] == pytest.approx(1 / np.sqrt(2), rel=0.01)
    with pytest.raises(ValueError, match=r"unknown variant 'ddpg'; valid: sac, td3"):
        critic = hn.make_critic("mlp", action_size=2, variant="ddpg")
        critic.init(jax.random.key(0), jnp.zeros((1, 3)), jnp.zeros((1, 2)))


def test_bfloat16_compute_keeps_float32_parameters_and_gradients():
    """Mixed precision (``dtype='bfloat16'``): the same parameters as float32, a float32 Q and float32
    gradients, within bfloat16's rounding of the float32 critic (8 mantissa bits: ~0.4% per op), and
    not equal to it (the compute really is in bfloat16). The learning run in bfloat16 is ``slow``."""
    small = dict(hidden_sizes=(32,), latent_widths=(32, 64), blocks_per_width=1)
    f32 = hn.make_critic("sa_hyper", action_size=ACT, **small)
    bf16 = hn.make_critic("sa_hyper", action_size=ACT, dtype="bfloat16", **small)
    obs, act = _inputs(batch=64)
    variables = f32.init(jax.random.key(0), obs, act)
    assert jax.tree.structure(variables) == jax.tree.structure(bf16.init(jax.random.key(0), obs, act))

    def loss(critic, params):
        return jnp.mean(critic.apply(params, obs, act) ** 2)

    q32, q16 = f32.apply(variables, obs, act), bf16.apply(variables, obs, act)
    assert q16.dtype == jnp.float32 and not np.array_equal(q32, q16)
    scale = float(jnp.abs(q32).max())
    np.testing.assert_allclose(q16, q32, atol=0.05 * scale)
    g32, g16 = jax.grad(lambda p: loss(f32, p))(variables), jax.grad(lambda p: loss(bf16, p))(variables)
    assert all(g.dtype == jnp.float32 for g in jax.tree.leaves(g16))
    flat32, flat16 = (jnp.concatenate([x.ravel() for x in jax.tree.leaves(g)]) for g in (g32, g16))
    cosine = flat32 @ flat16 / (jnp.linalg.norm(flat32) * jnp.linalg.norm(flat16))
    assert cosine > 0.99, cosine
