"""The hypernetwork halves: dynamic network maths, generated shapes, init spreads, Fig. 2."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hyperjax.nn import hyper
from hyperjax.nn import init as hinit


def test_apply_dynamic_matches_per_sample_loop():
    rng = np.random.default_rng(0)
    B, sizes = 3, (4, 5, 2)
    layers = [
        hyper.DynamicLayer(
            w=jnp.asarray(rng.normal(size=(B, i, o)), jnp.float32),
            b=jnp.asarray(rng.normal(size=(B, o)), jnp.float32),
            g=jnp.asarray(rng.normal(size=(B, o)), jnp.float32),
        )
        for i, o in zip(sizes[:-1], sizes[1:])
    ]
    x = rng.normal(size=(B, sizes[0])).astype(np.float32)
    expected = []
    for s in range(B):  # hand-written reference: relu((1+g) * (x W) + b), linear last layer
        h = x[s]
        for k, layer in enumerate(layers):
            h = (1 + np.asarray(layer.g[s])) * (h @ np.asarray(layer.w[s])) + np.asarray(layer.b[s])
            h = np.maximum(h, 0) if k == 0 else h
        expected.append(h)
    np.testing.assert_allclose(hyper.apply_dynamic(layers, jnp.asarray(x)), np.stack(expected), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("hidden_sizes", [(256,), (16, 8)])
def test_generated_shapes(hidden_sizes):
    gen = hyper.WeightGenerator(base_size=6, out_size=3, hidden_sizes=hidden_sizes, widths=(8, 16), blocks_per_width=1)
    meta = jnp.ones((5, 17))
    layers = gen.apply(gen.init(jax.random.key(0), meta), meta)
    sizes = (6, *hidden_sizes, 3)
    assert len(layers) == len(sizes) - 1
    for layer, fan_in, fan_out in zip(layers, sizes[:-1], sizes[1:]):
        assert layer.w.shape == (5, fan_in, fan_out)
        assert layer.b.shape == layer.g.shape == (5, fan_out)


def test_primary_network_paper_layout():
    net = hyper.PrimaryNetwork()
    params = net.init(jax.random.key(0), jnp.zeros((1, 27)))["params"]
    kernels = [x.shape for x in jax.tree.leaves(params) if x.ndim == 2]
    # 3 projections + 6 blocks x 2 Linear layers
    assert len(kernels) == 15
    assert kernels.count((27, 256)) == 1 and kernels.count((256, 512)) == 1 and kernels.count((512, 1024)) == 1
    assert kernels.count((256, 256)) == 4 and kernels.count((512, 512)) == 4 and kernels.count((1024, 1024)) == 4
    z = net.apply({"params": params}, jnp.ones((3, 27)))
    assert z.shape == (3, 1024)


SPREAD_CASES = [
    (mode, variant, dims)
    for mode in hinit.INIT_MODES
    for variant in hinit.PRIMARY_VARIANTS
    for dims in [(17, 6), (27, 8)]
]


@pytest.mark.parametrize("mode,variant,dims", SPREAD_CASES)
def test_generated_weight_spread(mode, variant, dims):
    """Paper-size generator, N(0, 1) meta inputs: measured std of W against its target.

    ``kaiming`` must hit the Kaiming-uniform std of each dynamic layer; ``authors`` must match
    the analytic moment-propagation prediction of hyperjax.nn.init (which also reproduces the
    ~3x-below-Kaiming scale that docs/authors_code.md, Hypernetwork reports).
    """
    obs, act = dims
    gen = hyper.WeightGenerator(base_size=act, out_size=1, init_mode=mode, variant=variant)
    meta = jax.random.normal(jax.random.key(123), (256, obs))
    layers = gen.apply(gen.init(jax.random.key(7), meta), meta)
    for layer, fan_in, is_last in [(layers[0], act, False), (layers[1], 256, True)]:
        measured = float(jnp.std(layer.w))
        if mode == "kaiming":
            target = hinit.kaiming_uniform_std(fan_in)
        else:
            target = hinit.predict_dynamic_weight_std(
                mode, meta_size=obs, dynamic_fan_in=fan_in, is_last=is_last, variant=variant
            )
        assert measured == pytest.approx(target, rel=0.08), (mode, variant, dims, fan_in, measured, target)
    if mode == "authors":  # the authors' init sits well below Kaiming (docs/authors_code.md, Hypernetwork)
        assert float(jnp.std(layers[0].w)) < 0.5 * hinit.kaiming_uniform_std(act)


def test_bad_init_mode():
    gen = hyper.WeightGenerator(base_size=2, out_size=1, init_mode="xavier", widths=(4,), blocks_per_width=1)
    with pytest.raises(ValueError, match="unknown init mode 'xavier'; valid: authors, kaiming"):
        gen.init(jax.random.key(0), jnp.ones((1, 3)))


def test_action_gradient_flows_through_dynamic_network_only():
    """Paper Fig. 2: dQ/da equals the gradient through the dynamic net with W(s) held fixed."""
    net = hyper.HyperNetwork(base_size=3, out_size=1, hidden_sizes=(32,), widths=(16, 32), blocks_per_width=1)
    obs = jax.random.normal(jax.random.key(0), (4, 5))
    act = jax.random.normal(jax.random.key(1), (4, 3))
    variables = net.init(jax.random.key(2), obs, act)

    grad_full = jax.grad(lambda a: net.apply(variables, obs, a).sum())(act)
    fixed = jax.lax.stop_gradient(net.apply(variables, obs, method="generate"))
    grad_dynamic = jax.grad(lambda a: hyper.apply_dynamic(fixed, a).sum())(act)
    np.testing.assert_allclose(grad_full, grad_dynamic, rtol=1e-6, atol=1e-7)
    assert float(jnp.abs(grad_full).sum()) > 0


def _numpy_hyper(params: dict, meta: np.ndarray, base: np.ndarray) -> np.ndarray:
    """The hypernetwork in float64 numpy, written from the paper's equations (an independent forward)."""

    def dense(p, x):
        return x @ np.asarray(p["kernel"]) + np.asarray(p["bias"])

    primary, x = params["generator"]["primary"], meta
    for name in sorted(k for k in primary if k.startswith("Dense")):  # widening layers, then their blocks
        x = dense(primary[name], x)
        i = int(name.split("_")[1])
        block = primary[f"ResBlock_{i}"]
        x = x + dense(block["Dense_1"], np.maximum(dense(block["Dense_0"], np.maximum(x, 0)), 0))
    h = base
    heads = sorted(k for k in params["generator"] if k.startswith("head_"))
    for i, name in enumerate(heads):
        out = dense(params["generator"][name], x)
        fan_in = h.shape[-1]
        fan_out = (out.shape[-1]) // (fan_in + 2)
        w = out[:, : fan_in * fan_out].reshape(-1, fan_in, fan_out)
        b, g = out[:, fan_in * fan_out : fan_in * fan_out + fan_out], out[:, fan_in * fan_out + fan_out :]
        h = (1 + g) * np.einsum("bi,bio->bo", h, w) + b
        if i < len(heads) - 1:
            h = np.maximum(h, 0)
    return h


def test_float64_hypernetwork_computes_in_float64():
    """Flax's dtype contract: float64 inputs and ``param_dtype`` give a float64 forward pass (no cast
    down to float32 on the way), equal to a float64 numpy forward to 1e-12; the default stays float32."""
    kwargs = dict(base_size=3, out_size=2, hidden_sizes=(8,), widths=(8, 16), blocks_per_width=1)
    with jax.enable_x64(True):
        net = hyper.HyperNetwork(**kwargs, param_dtype=jnp.float64)
        meta = jax.random.normal(jax.random.key(0), (4, 5), jnp.float64)
        base = jax.random.normal(jax.random.key(1), (4, 3), jnp.float64)
        variables = net.init(jax.random.key(2), meta, base)
        out = net.apply(variables, meta, base)
        assert out.dtype == jnp.float64
        assert all(p.dtype == jnp.float64 for p in jax.tree.leaves(variables))
        expected = _numpy_hyper(jax.tree.map(np.asarray, variables["params"]), np.asarray(meta), np.asarray(base))
        np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-12, atol=1e-14)
    net32 = hyper.HyperNetwork(**kwargs)
    variables32 = net32.init(jax.random.key(2), meta.astype(jnp.float32), base.astype(jnp.float32))
    assert net32.apply(variables32, meta.astype(jnp.float32), base.astype(jnp.float32)).dtype == jnp.float32
    layers = net32.apply(variables32, meta.astype(jnp.float32), method="generate")
    assert layers[0].w.dtype == jnp.float32
