"""hyperjax.nnx against hyperjax.nn: the same parameter trees and initialisation (both init modes), and
with parameters copied either way the same outputs and gradients (parameters and inputs), per module.

Fast by design: the file's time is XLA compiling, so parity checks build their nnx modules abstractly
(``nnx.eval_shape``) and fill both APIs with the same random parameters drawn by numpy (no program to
compile), and each check is one compiled program per API; initialisation is checked on its own.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import hyperjax.nn as hn
import hyperjax.nnx as hx
from hyperjax.nn import critics
from hyperjax.nn import init as hinit

OBS, ACT, CTX, META, B = 5, 3, 4, 6, 7
TINY_HYPER = dict(latent_widths=(8, 16), blocks_per_width=1)
SMALL = {  # tiny sizes per registered critic
    "sa_hyper": dict(hidden_sizes=(8,), **TINY_HYPER),
    "as_hyper": dict(hidden_sizes=(8,), **TINY_HYPER),
    "mlp": dict(hidden_sizes=(8, 8)),
    "mlp_small": dict(hidden_sizes=(8,)),
    "mlp_large": dict(hidden_sizes=(16, 16)),
    "resnet_features": dict(hidden_sizes=(8,)),
    "res35": dict(width=8, num_blocks=2),
    "d2rl": dict(width=8, num_layers=3),
}
FIGURES: dict[str, dict] = {}  # max abs differences per check, printed with -s


def _x(seed: int, *shape: int) -> jax.Array:
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)


def _random_like(tree, seed: int):
    """The same tree of shapes filled with N(0, 0.3^2) draws (numpy: nothing to compile)."""
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda s: jnp.asarray(0.3 * rng.normal(size=s.shape), s.dtype), tree)


def _abstract(make):
    """The nnx module ``make()`` builds, with shapes in place of its parameters (nothing runs)."""
    return nnx.eval_shape(make)


def _max_diff(a, b) -> float:
    diffs = jax.tree.map(lambda x, y: float(jnp.max(jnp.abs(x - y))), a, b)
    return max(jax.tree.leaves(diffs), default=0.0)


def _paths(tree) -> list[str]:
    return sorted(jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(tree))


def _weighted_sum(out) -> jax.Array:
    """A scalar reading every output entry with its own weight (so gradients are not symmetric)."""
    leaves = jax.tree.leaves(out)
    return sum(jnp.sum(x * _x(i + 100, *x.shape)) for i, x in enumerate(leaves))


def _check_parity(label, nnx_module, inputs, linen_fn=None, nnx_fn=None, seed=0) -> tuple[dict, object]:
    """Fills ``nnx_module`` with random parameters copied from a linen tree (``load_linen_params``), then
    compares outputs, parameter gradients and input gradients of the two APIs, each one compiled program.

    ``linen_fn(params, *inputs)`` defaults to the linen module's ``apply``, ``nnx_fn(module, *inputs)``
    to calling the module. Returns the figures and the nnx outputs."""
    linen = nnx_module.linen
    linen_fn = linen_fn or (lambda params, *xs: linen.apply({"params": params}, *xs))
    nnx_fn = nnx_fn or (lambda module, *xs: module(*xs))
    params = _random_like(nnx_module.linen_params(), seed)
    nnx_module.load_linen_params(params)
    assert _max_diff(nnx_module.linen_params(), params) == 0.0  # the copy back is exact

    def linen_loss(p, *xs):
        out = linen_fn(p, *xs)
        return _weighted_sum(out), out

    def nnx_loss(m, *xs):
        out = nnx_fn(m, *xs)
        return _weighted_sum(out), out

    argnums = tuple(range(len(inputs) + 1))
    (_, l_out), l_grads = jax.jit(jax.value_and_grad(linen_loss, argnums=argnums, has_aux=True))(params, *inputs)
    (_, x_out), x_grads = nnx.jit(nnx.value_and_grad(nnx_loss, argnums=argnums, has_aux=True))(nnx_module, *inputs)
    assert jax.tree.structure(l_out) == jax.tree.structure(x_out)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves((l_out, l_grads)))
    assert float(jnp.max(jnp.abs(jnp.concatenate([g.ravel() for g in jax.tree.leaves(l_grads)])))) > 0
    figures = {
        "output": _max_diff(l_out, x_out),
        "param_grad": _max_diff(l_grads[0], nnx.to_pure_dict(x_grads[0])),
        "input_grad": _max_diff(l_grads[1:], x_grads[1:]),
    }
    FIGURES[label] = figures
    print(label, figures)
    assert all(v <= 1e-6 for v in figures.values()), figures
    return figures, x_out


def _check_outputs(label, nnx_module, inputs) -> None:
    """Outputs only (the gradients' parity is checked on the modules that contain this one)."""
    params = _random_like(nnx_module.linen_params(), 0)
    nnx_module.load_linen_params(params)
    l_out = jax.jit(lambda p, *xs: nnx_module.linen.apply({"params": p}, *xs))(params, *inputs)
    x_out = nnx.jit(lambda m, *xs: m(*xs))(nnx_module, *inputs)
    FIGURES[label] = {"output": _max_diff(l_out, x_out)}
    print(label, FIGURES[label])
    assert FIGURES[label]["output"] == 0.0


@pytest.mark.parametrize("name", list(critics.CRITICS))
def test_critic_parity(name):
    obs, act = _x(0, B, OBS), _x(1, B, ACT)
    critic = _abstract(lambda: hx.make_critic(name, obs_size=OBS, action_size=ACT, rngs=nnx.Rngs(0), **SMALL[name]))
    assert type(critic) is hx.CRITIC_CLASSES[critics.CRITICS[name].module]
    linen = critics.make_critic(name, action_size=ACT, **SMALL[name])
    assert critic.linen == linen  # the same configuration, presets included
    assert _paths(critic.linen_params()) == _paths(jax.eval_shape(linen.init, jax.random.key(0), obs, act)["params"])
    figures, _ = _check_parity(f"critic {name}", critic, (obs, act))
    assert figures["output"] == 0.0  # one implementation: the same program


def test_every_registered_critic_has_an_nnx_class():
    assert {spec.module for spec in critics.CRITICS.values()} <= set(hx.CRITIC_CLASSES)
    single = _abstract(
        lambda: hx.make_critic("sa_hyper", obs_size=OBS, action_size=ACT, rngs=nnx.Rngs(0), num_critics=1)
    )
    assert {x.shape[0] for x in jax.tree.leaves(single.linen_params())} == {1}  # overrides reach the linen module
    with pytest.raises(ValueError, match="unknown critic"):
        hx.make_critic("nope", obs_size=OBS, action_size=ACT, rngs=nnx.Rngs(0))


@pytest.mark.parametrize("mode,variant", [("authors", "sac"), ("kaiming", "td3")])
def test_initialisation_is_linens(mode, variant):
    """An nnx module's own parameters are linen's ``init`` with the key ``ToNNX`` draws from its rngs, and the
    heads' bounds are the init mode's; the nnx module is usable under ``nnx.jit``, split and merged."""
    key = jax.random.key(3, impl="unsafe_rbg")  # its initialisers compile several times faster than threefry's
    kw = dict(hidden_sizes=(8,), init_mode=mode, variant=variant, **TINY_HYPER)
    critic = nnx.jit(lambda: hx.SAHyperCritic(obs_size=OBS, action_size=ACT, rngs=nnx.Rngs(params=key), **kw))()
    linen = critics.SAHyperCritic(action_size=ACT, **kw)
    obs, act = _x(0, B, OBS), _x(1, B, ACT)
    expected = jax.jit(linen.init)(nnx.Rngs(params=key).fork().params(), obs, act)["params"]
    assert _max_diff(critic.linen_params(), expected) == 0.0
    q_z = hinit.predict_latent_second_moment(OBS, (8, 16), 1, variant)
    for i, (fan_in, last) in enumerate([(ACT, False), (8, True)]):
        kernel = critic.linen_params()["q"]["hyper"]["generator"][f"head_{i}"]["kernel"]
        bound = hinit.head_bound(mode, dynamic_fan_in=fan_in, is_last=last, latent_size=16, latent_second_moment=q_z)
        assert 0.8 * bound < float(jnp.max(jnp.abs(kernel))) <= bound
    graphdef, state = nnx.split(critic)
    assert set(nnx.to_pure_dict(state)) == {"q"}  # parameters only: no RNG state after init
    forward = nnx.jit(lambda m, o, a: m(o, a))
    q = forward(critic, obs, act)
    assert q.shape == (2, B) and q.dtype == jnp.float32
    np.testing.assert_array_equal(forward(nnx.merge(graphdef, state), obs, act), q)


def test_hypernetwork_parts_parity():
    kw = dict(hidden_sizes=(8,), widths=(8, 16), blocks_per_width=1)
    meta, base = _x(0, B, META), _x(1, B, ACT)
    net = _abstract(lambda: hx.HyperNetwork(META, ACT, 2, rngs=nnx.Rngs(0), **kw))
    assert net.linen == hn.HyperNetwork(ACT, 2, **kw)

    def linen_both(params, meta, base):  # the call and its generated weights, in one program
        return net.linen.apply({"params": params}, meta, base), net.linen.apply(
            {"params": params}, meta, method="generate"
        )

    def nnx_both(module, meta, base):
        return module(meta, base), module.generate(meta)

    _, (out, layers) = _check_parity("HyperNetwork (call, generate)", net, (meta, base), linen_both, nnx_both)
    np.testing.assert_allclose(hx.apply_dynamic(layers, base), out, rtol=1e-6, atol=1e-6)
    assert [layer.w.shape for layer in layers] == [(B, ACT, 8), (B, 8, 2)]

    generator = _abstract(lambda: hx.WeightGenerator(META, ACT, 2, rngs=nnx.Rngs(0), **kw))
    assert _paths(generator.linen_params()) == _paths(net.linen_params()["generator"])
    _check_outputs("WeightGenerator", generator, (meta,))
    primary = _abstract(lambda: hx.PrimaryNetwork(META, rngs=nnx.Rngs(0), widths=(8, 16), blocks_per_width=1))
    assert _paths(primary.linen_params()) == _paths(net.linen_params()["generator"]["primary"])
    _check_outputs("PrimaryNetwork", primary, (meta,))


HYPER_POLICY = dict(hidden_sizes=(8,), widths=(8, 16), blocks_per_width=1)
POLICY_CASES = {  # name: (nnx class's sizes, config, the linen module)
    "tanh_gaussian": ((OBS, ACT), dict(hidden_sizes=(8, 8)), hn.TanhGaussianPolicy(ACT, (8, 8))),
    "deterministic": ((OBS, ACT), dict(hidden_sizes=(8, 8)), hn.DeterministicPolicy(ACT, (8, 8))),
    "hyper": ((OBS, CTX, ACT), HYPER_POLICY, hn.HyperPolicy(ACT, (8,), widths=(8, 16), blocks_per_width=1)),
    "hyper_head": (
        (OBS, CTX, ACT),
        dict(log_std_mode="head", **HYPER_POLICY),
        hn.HyperPolicy(ACT, (8,), log_std_mode="head", widths=(8, 16), blocks_per_width=1),
    ),
    "context_mlp": ((OBS, CTX, ACT), dict(hidden_sizes=(8, 8)), hn.ContextMLPPolicy(ACT, (8, 8))),
}


@pytest.mark.parametrize("case", list(POLICY_CASES))
def test_policy_parity(case):
    sizes, config, linen = POLICY_CASES[case]
    policy = _abstract(lambda: hx.POLICIES[case.removesuffix("_head")](*sizes, rngs=nnx.Rngs(0), **config))
    assert policy.linen == linen
    inputs = tuple(_x(i, B, size) for i, size in enumerate(sizes[:-1]))
    _check_parity(f"policy {case}", policy, inputs)
    if case.startswith("hyper"):  # weights made once per context, then run on the states: the same outputs
        obs, context = inputs
        out = nnx.jit(lambda m: hx.apply_dynamic(m.generate(context), obs))(policy)
        mean, log_std = nnx.jit(lambda m: m(obs, context))(policy)
        np.testing.assert_allclose(out[:, :ACT], mean, rtol=1e-6, atol=1e-6)
        if case == "hyper_head":
            np.testing.assert_allclose(jnp.clip(out[:, ACT:], -20, 2), log_std, rtol=1e-6, atol=1e-6)


def test_rlkit_parity():
    x = _x(0, B, OBS)
    mlp = _abstract(lambda: hx.RlkitMLP(OBS, (8, 8), 2, rngs=nnx.Rngs(0)))
    assert mlp.linen == hn.RlkitMLP((8, 8), 2)
    _check_parity("RlkitMLP", mlp, (x,))
    policy = _abstract(lambda: hx.RlkitPolicy(OBS, ACT, (8,), rngs=nnx.Rngs(0)))
    assert policy.linen == hn.RlkitPolicy(ACT, (8,))
    _check_parity("RlkitPolicy", policy, (x,))


@pytest.mark.parametrize("model", hn.PEARL_MODELS)
def test_pearl_networks_parity(model):
    sizes = dict(net_size=8, encoder_hidden_sizes=(8,), hyper_widths=(8, 16), hyper_hidden_sizes=(8,))
    functions = hn.make_pearl_networks(model, OBS, ACT, 5, **sizes)
    nets = _abstract(lambda: hx.PEARLNetworks(model, OBS, ACT, 5, rngs=nnx.Rngs(0), **sizes))
    assert _paths(nets.linen_params()) == _paths(jax.eval_shape(functions.init, jax.random.key(0)))
    obs, act, z = _x(1, B, OBS), _x(2, B, ACT), _x(3, B, 5)
    context = _x(4, 2, B, OBS + ACT + 1)

    def pure_all(p, obs, act, z, context):  # every function of the model, in one program
        return (
            functions.encode(p, context),
            functions.q(p, obs, act, z),
            functions.v(p["v"], obs, z),
            functions.policy(p, obs, z[0]),
        )

    def nnx_all(m, obs, act, z, context):
        return m.encode(context), m.q(obs, act, z), m.v(obs, z), m.policy(obs, z[0])

    # PEARLNetworks holds its params under ``params`` (the agent state's layout), hence the key
    params = _random_like(nets.linen_params(), 0)
    nets.load_linen_params(params)
    argnums = 0  # the parameters' gradients (the inputs' are checked on the modules inside)

    def loss(fn):
        return lambda *a: (_weighted_sum(fn(*a)), fn(*a))

    inputs = (obs, act, z, context)
    (_, l_out), l_grads = jax.jit(jax.value_and_grad(loss(pure_all), argnums=argnums, has_aux=True))(params, *inputs)
    (_, x_out), x_grads = nnx.jit(nnx.value_and_grad(loss(nnx_all), argnums=argnums, has_aux=True))(nets, *inputs)
    figures = {
        "output": _max_diff(l_out, x_out),
        "param_grad": _max_diff(l_grads, nnx.to_pure_dict(x_grads)["params"]),
    }
    FIGURES[f"PEARLNetworks {model}"] = figures
    print(f"PEARLNetworks {model}", figures)
    assert all(v <= 1e-6 for v in figures.values()), figures
    weights = nets.policy_weights(z[0])
    np.testing.assert_allclose(nets.policy_dist(weights, obs), x_out[3], rtol=1e-5, atol=1e-5)  # eager against jit


def test_optimizer_steps_match_optax_on_linen():
    """Two Adam steps with nnx.Optimizer equal two optax steps on the linen params."""
    obs, act, target = _x(0, B, OBS), _x(1, B, ACT), _x(2, 2, B)
    critic = _abstract(lambda: hx.MLPCritic(OBS, ACT, rngs=nnx.Rngs(0), hidden_sizes=(8, 8)))
    params = _random_like(critic.linen_params(), 0)
    critic.load_linen_params(params)
    tx = optax.adam(1e-2)
    opt = nnx.Optimizer(critic, tx, wrt=nnx.Param)
    opt_state = tx.init(params)

    def loss(q):
        return jnp.mean((q - target) ** 2)

    @nnx.jit
    def nnx_step(critic, opt):
        opt.update(critic, nnx.grad(lambda m: loss(m(obs, act)))(critic))

    @jax.jit
    def linen_step(params, opt_state):
        grads = jax.grad(lambda p: loss(critic.linen.apply({"params": p}, obs, act)))(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    for _ in range(2):
        nnx_step(critic, opt)
        params, opt_state = linen_step(params, opt_state)
    assert _max_diff(params, critic.linen_params()) <= 1e-6


def test_load_linen_params_names_a_mismatch():
    critic = _abstract(lambda: hx.MLPCritic(OBS, ACT, rngs=nnx.Rngs(0), hidden_sizes=(8,)))
    other = _random_like(
        _abstract(lambda: hx.MLPCritic(OBS + 1, ACT, rngs=nnx.Rngs(0), hidden_sizes=(8,))).linen_params(), 0
    )
    with pytest.raises(ValueError, match=r"MLPCritic: parameter .*Dense_0.*kernel.* has shape \(2, 9, 8\)"):
        critic.load_linen_params(other)
    with pytest.raises(ValueError, match="is missing"):
        critic.load_linen_params({"q": {}})
    params = _random_like(critic.linen_params(), 1)
    critic.load_linen_params({"params": params})  # linen variables are accepted as well
    assert _max_diff(critic.linen_params(), params) == 0.0
