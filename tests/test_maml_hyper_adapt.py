"""The hyper policy's closed-form inner step (``maml_adapt.sgd_step_outputs`` via
``MetaPolicy.adapted_weights``) against the generic ``maml.adapt`` then ``task_weights``: the adapted
weights, the outer loss and KL, their gradients, a Fisher-vector product and a whole TRPO step, first
and second order; in float64 to 1e-10 and in float32 to ~1e-5. Tiny sizes; the whole TRPO steps
and the float32 comparisons (10-60 s of compiling each on 2 cores) run with -m slow."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util
from jax.extend import core as jax_core
from jax.flatten_util import ravel_pytree

from hyperjax.agents import maml, trpo
from tests.test_maml import _episodes

OBS, ACT, CTX, TASKS = 5, 2, 3, 4  # distinct, so no intermediate shape is a kernel shape by chance
# a step size at which the correction term matters (the paper's 5e-5 would hide a wrong one)
LR = 0.2
episodes = functools.partial(_episodes, obs=OBS, act=ACT)  # 3 episodes of 5 steps, one ending early


def _setup(dtype, second_order, old_shift=0.05):
    """``(config, closed-form policy, generic policy, params, batch)`` in ``dtype``: a generic point
    (the heads' zero biases and the zero log-std moved), ``TASKS`` tasks; the collecting policy's
    ``old`` distributions are the adapted ones moved by ``old_shift`` (a non-zero KL and KL
    gradient; 0: TRPO's case, the KL's Hessian the Fisher matrix)."""
    config = maml.MAMLConfig(
        policy="hyper", hyper_widths=(8, 16), hyper_hidden_sizes=(8,), inner_lr=LR, second_order=second_order
    )
    policy = maml.make_policy(config, obs_size=OBS, action_size=ACT, context_size=CTX)
    assert policy.adapted_weights is not None
    return (config, policy, policy._replace(adapted_weights=None), *_data(dtype, old_shift))


@functools.cache
def _data(dtype, old_shift):
    """``(params, batch)``, made once per dtype (under ``jax.enable_x64`` for float64)."""
    config = maml.MAMLConfig(policy="hyper", hyper_widths=(8, 16), hyper_hidden_sizes=(8,))
    policy = maml.make_policy(config, obs_size=OBS, action_size=ACT, context_size=CTX)
    generic = policy._replace(adapted_weights=None)
    params = jax.jit(policy.init)(jax.random.key(0))
    flat, unravel = ravel_pytree(params)
    params = unravel(flat + 0.1 * jax.random.normal(jax.random.key(1), flat.shape))
    params = jax.tree.map(lambda x: x.astype(dtype), params)
    contexts = jax.random.normal(jax.random.key(2), (TASKS, CTX), dtype)
    pre = jax.vmap(episodes)(jax.random.split(jax.random.key(3), TASKS))
    post = jax.vmap(episodes)(jax.random.split(jax.random.key(4), TASKS))
    pre, post = (jax.tree.map(lambda x: x.astype(dtype), e) for e in (pre, post))

    def old_dist(context, pre, post):
        weights = maml.adapted_weights(generic, params, context, pre, LR)
        return policy.dist(weights, post.obs.reshape(-1, OBS))

    old = jax.tree.map(lambda x: x + old_shift, jax.jit(jax.vmap(old_dist))(contexts, pre, post))
    return params, maml.Batch(contexts, contexts, pre, post, old)


def _close(actual, expected, dtype):
    """Leaf by leaf: float64 to 1e-10 relative; float32 to 1e-5 relative or 1e-5 of the leaf's
    largest entry (its small entries carry the large ones' rounding)."""
    rtol = 1e-10 if dtype == jnp.float64 else 1e-5
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        a, e = np.asarray(a), np.asarray(e)
        np.testing.assert_allclose(a, e, rtol=rtol, atol=rtol * np.max(np.abs(e)))


CASES = [
    pytest.param(jnp.float64, False, id="float64-first_order"),
    pytest.param(jnp.float64, True, id="float64-second_order"),
    pytest.param(jnp.float32, False, id="float32-first_order"),
    pytest.param(jnp.float32, True, id="float32-second_order"),
]
# float32's gradients and Fisher-vector products (~20 s each on 2 cores) with -m slow: float64's are the
# tight check of the same algebra; float32's closed form runs by default in the structural test below
OBJECTIVE_CASES = [*CASES[:2], *(pytest.param(*c.values, id=c.id, marks=pytest.mark.slow) for c in CASES[2:])]


@pytest.mark.parametrize(("dtype", "second_order"), OBJECTIVE_CASES)
def test_adapted_weights_equal_adapt_then_task_weights(dtype, second_order):
    with jax.enable_x64(dtype == jnp.float64):
        _, policy, generic, params, batch = _setup(dtype, second_order)

        def weights(p, which):
            one = lambda c, e: maml.adapted_weights(which, p, c, e, LR, second_order)  # noqa: E731
            return jax.vmap(one)(batch.contexts, batch.pre)

        closed, expected = (jax.jit(weights, static_argnums=1)(params, which) for which in (policy, generic))
        _close(closed, expected, dtype)
        # the step moved the weights: the comparison is not of two unadapted networks
        unadapted = jax.vmap(policy.task_weights, (None, 0))(params, batch.contexts)
        moved = jax.tree.map(lambda a, u: float(jnp.max(jnp.abs(a - u))), expected, unadapted)
        assert max(jax.tree.leaves(moved)) > 1e-2


@pytest.mark.parametrize(("dtype", "second_order"), OBJECTIVE_CASES)
def test_outer_loss_kl_gradients_and_fisher_vector_product_equal_the_generic_path(dtype, second_order):
    with jax.enable_x64(dtype == jnp.float64):
        config, policy, generic, params, batch = _setup(dtype, second_order)
        closed_objective, _ = maml.make_meta_step(config, policy)
        generic_objective, _ = maml.make_meta_step(config, generic)

        def everything(objective):
            loss, kl = objective(params, batch)
            loss_grad = jax.grad(lambda p: objective(p, batch)[0])(params)
            kl_grad = jax.grad(lambda p: objective(p, batch)[1])(params)
            flat = ravel_pytree(params)[0]
            v = jax.random.normal(jax.random.key(5), flat.shape, flat.dtype)
            fvp = trpo.fisher_vector_product(lambda p: objective(p, batch)[1], params, 1e-5)(v)
            return loss, kl, loss_grad, kl_grad, fvp

        closed = jax.jit(everything, static_argnums=0)(closed_objective)
        expected = jax.jit(everything, static_argnums=0)(generic_objective)
        _close(closed, expected, dtype)
        assert abs(float(expected[1])) > 1e-3  # a non-zero KL, so its gradient and Hessian are tested
        assert float(jnp.linalg.norm(expected[4])) > 1e-3


@pytest.mark.slow  # ~22 s (first order) and ~60 s (second) compiling two TRPO steps; its parts are tested above
@pytest.mark.parametrize("second_order", [False, True], ids=["first_order", "second_order"])
def test_trpo_meta_step_equals_the_generic_path_in_float64(second_order):
    """The whole step (CG, line search) from the policy that collected the data: the same decisions,
    the same step and surrogate to 1e-4. Not 1e-10: 10 CG iterations on this tiny net's
    near-singular Fisher (damping 1e-5) amplify the two paths' roundings, whose gradients and
    Fisher-vector products agree to 1e-10 above, to 1e-6 (first order) and 2e-5 (second order)."""
    with jax.enable_x64(True):
        config, policy, generic, params, batch = _setup(jnp.float64, second_order, old_shift=0.0)
        closed_params, closed_info = jax.jit(maml.make_meta_step(config, policy)[1])(params, batch)
        expected_params, expected_info = jax.jit(maml.make_meta_step(config, generic)[1])(params, batch)
        assert bool(expected_info.accepted)
        assert int(closed_info.ls_steps) == int(expected_info.ls_steps)
        _close(closed_info.loss_before, expected_info.loss_before, jnp.float64)
        for field in ("loss_after", "kl", "step_size"):
            np.testing.assert_allclose(getattr(closed_info, field), getattr(expected_info, field), rtol=1e-4)
        flat = ravel_pytree(params)[0]
        closed_step, expected_step = ravel_pytree(closed_params)[0] - flat, ravel_pytree(expected_params)[0] - flat
        np.testing.assert_allclose(closed_step, expected_step, rtol=0, atol=1e-4 * np.max(np.abs(expected_step)))


def _intermediate_shapes(fn, *args) -> set[tuple[int, ...]]:
    shapes = set()

    def visit(jaxpr):
        for eqn in jaxpr.eqns:
            shapes.update(tuple(v.aval.shape) for v in eqn.outvars if hasattr(v.aval, "shape"))
            for sub in jax_core.jaxprs_in_params(eqn.params):
                visit(sub)

    visit(jax.make_jaxpr(fn)(*args).jaxpr)
    return shapes


@pytest.mark.parametrize("second_order", [False, True], ids=["first_order", "second_order"])
def test_no_adapted_copy_of_a_hypernetwork_kernel_per_task(second_order):
    """What the closed form is for: no ``[tasks, in, out]`` array of any Dense kernel's shape
    (the generic path makes one per kernel: the per-task gradients and adapted copies)."""
    config, policy, generic, params, batch = _setup(jnp.float32, second_order)
    kernels = {
        (TASKS, *v.shape) for k, v in traverse_util.flatten_dict(params).items() if k[-1] == "kernel" and v.ndim == 2
    }

    def objective(which):
        return lambda p: maml.make_meta_step(config, which)[0](p, batch)[0]

    assert kernels <= _intermediate_shapes(objective(generic), params)  # the check sees the copies
    assert not kernels & _intermediate_shapes(objective(policy), params)
    assert not kernels & _intermediate_shapes(jax.grad(objective(policy)), params)
