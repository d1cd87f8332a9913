"""TRPO: CG against a direct solve, the Fisher-vector product against explicit Fishers, the step's
trust region, and the reverts."""

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from hyperjax.agents import pg, trpo

OBS, ACT, BATCH = 3, 2, 32


def test_conjugate_gradient_solves_spd_system():
    rng = np.random.default_rng(0)
    m = rng.normal(size=(8, 8))
    a, b = (m @ m.T + np.eye(8)).astype(np.float32), rng.normal(size=8).astype(np.float32)
    x = jax.jit(lambda a, b: trpo.conjugate_gradient(lambda v: a @ v, b, iters=20))(a, b)
    expected = np.linalg.solve(a.astype(np.float64), b.astype(np.float64))
    np.testing.assert_allclose(x, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


def _authors_cg(a, b, iters, residual_tol):
    """pytorch-maml-rl's ``conjugate_gradient`` in float64 numpy; also returns the update count."""
    x, r, p = np.zeros_like(b), b.copy(), b.copy()
    rdotr = r @ r
    for i in range(iters):
        z = a @ p
        v = rdotr / (p @ z)
        x += v * p
        r -= v * z
        new_rdotr = r @ r
        p = r + new_rdotr / rdotr * p
        rdotr = new_rdotr
        if rdotr < residual_tol:
            return x, i + 1
    return x, iters


def test_conjugate_gradient_stops_at_residual_tol():
    a = jnp.diag(jnp.arange(1.0, 9.0))
    b = jnp.ones(8)
    cg = jax.jit(trpo.conjugate_gradient, static_argnums=0, static_argnames=("iters", "residual_tol"))
    # A huge tolerance stops after the first update: x1 = (b.b / b.Ab) b.
    np.testing.assert_allclose(cg(lambda v: a @ v, b, iters=10, residual_tol=1e30), np.full(8, 8.0 / 36.0), rtol=1e-6)
    # A middling one stops where the authors' loop does, short of the solution.
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    expected, updates = _authors_cg(a64, b64, iters=10, residual_tol=1e-2)
    assert 1 < updates < 8
    assert np.abs(np.linalg.solve(a64, b64) - expected).max() > 1e-3
    np.testing.assert_allclose(cg(lambda v: a @ v, b, iters=10, residual_tol=1e-2), expected, rtol=1e-5)
    # A multiple of the identity is solved exactly by the first update; b = 0 gives 0.
    np.testing.assert_array_equal(cg(lambda v: 4.0 * v, b, iters=10, residual_tol=1e-10), np.full(8, 0.25))
    np.testing.assert_array_equal(cg(lambda v: a @ v, jnp.zeros(8), iters=10, residual_tol=1e-10), 0.0)


def _policy(params, obs):
    """Linear-Gaussian policy: ``mean = obs @ W``, state-independent ``log_std``."""
    return obs @ params["W"], jnp.broadcast_to(params["log_std"], (obs.shape[0], ACT))


# Fixed on-policy data of a linear-Gaussian policy (numpy, so building it compiles nothing).
_RNG = np.random.default_rng(0)
PARAMS = {
    "W": (0.5 * _RNG.normal(size=(OBS, ACT))).astype(np.float32),
    "log_std": np.array([-0.5, 0.2], np.float32),
}
STATES = _RNG.normal(size=(BATCH, OBS)).astype(np.float32)
ACTIONS = (STATES @ PARAMS["W"] + np.exp(PARAMS["log_std"]) * _RNG.normal(size=(BATCH, ACT))).astype(np.float32)
ADVANTAGES = ACTIONS[:, 0] - ACTIONS[:, 1]  # favours a larger first and a smaller second action


def _losses(advantages):
    """Importance-weighted policy-gradient surrogate and ``KL(old || new)``, old = ``PARAMS``."""
    old = jax.lax.stop_gradient(_policy(PARAMS, STATES))
    old_log_prob = pg.gaussian_log_prob(*old, ACTIONS)

    def surrogate(p):
        ratio = jnp.exp(pg.gaussian_log_prob(*_policy(p, STATES), ACTIONS) - old_log_prob)
        return -jnp.mean(ratio * advantages)

    def kl_fn(p):
        return jnp.mean(pg.gaussian_kl(*old, *_policy(p, STATES)))

    return surrogate, kl_fn


@jax.jit
def _step(advantages):
    """A default-config TRPO step on the fixed data, with the surrogate and KL at its result."""
    surrogate, kl_fn = _losses(advantages)
    new, info = trpo.trpo_step(surrogate, kl_fn, PARAMS)
    return new, info, surrogate(PARAMS), surrogate(new), kl_fn(new)


def test_fisher_vector_product_equals_explicit_fisher():
    flat, unravel = ravel_pytree(PARAMS)  # W (row-major) then log_std
    damping = 1e-3
    v = np.random.default_rng(2).normal(size=flat.shape).astype(np.float32)

    @jax.jit
    def products(v):
        _, kl_fn = _losses(jnp.zeros(BATCH))
        fv = trpo.fisher_vector_product(kl_fn, PARAMS, damping)(v)
        return fv, jax.hessian(lambda f: kl_fn(unravel(f)))(flat)

    fv, hessian = products(v)
    np.testing.assert_allclose(fv, hessian @ v + damping * v, rtol=1e-5, atol=1e-6)
    # Analytic Fisher of the Gaussian: mean part J^T diag(1/sigma^2) J averaged over states
    # (J = d mean / d W), 2 I for the log-stds, no cross terms.
    o = STATES.astype(np.float64)
    inv_var = np.exp(-2.0 * PARAMS["log_std"].astype(np.float64))
    fisher_w = np.kron(o.T @ o / BATCH, np.diag(inv_var))  # [(i, j), (k, l)] = E[o_i o_k] d_jl / s_j^2
    fisher = np.block([[fisher_w, np.zeros((OBS * ACT, ACT))], [np.zeros((ACT, OBS * ACT)), 2.0 * np.eye(ACT)]])
    np.testing.assert_allclose(fv, fisher @ v + damping * v, rtol=1e-4, atol=1e-5)


def test_trpo_step_lowers_surrogate_within_trust_region():
    config = trpo.TrpoConfig()
    _, info, loss_before, loss_after, kl = _step(ADVANTAGES)
    assert bool(info.accepted) and 1 <= int(info.ls_steps) <= config.ls_max_steps
    assert float(loss_after) < float(loss_before)
    assert 0.0 < float(kl) <= config.max_kl
    np.testing.assert_allclose(info.loss_before, loss_before, rtol=1e-6)
    np.testing.assert_allclose(info.loss_after, loss_after, rtol=1e-6)
    np.testing.assert_allclose(info.kl, kl, rtol=1e-5)
    np.testing.assert_allclose(info.step_size, config.ls_ratio ** (int(info.ls_steps) - 1), rtol=1e-6)
    # The full step is sized to the quadratic trust region's edge: its KL is about max_kl.
    assert 0.25 * config.max_kl < float(info.kl) / float(info.step_size) ** 2 < 4.0 * config.max_kl


def _assert_reverted(new, info, ls_steps):
    for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(PARAMS)):
        np.testing.assert_array_equal(a, b)
    assert not bool(info.accepted) and int(info.ls_steps) == ls_steps
    assert float(info.step_size) == 0.0 and float(info.kl) == 0.0
    assert float(info.loss_after) == float(info.loss_before)


def test_trpo_step_reverts_when_nothing_is_acceptable():
    config = trpo.TrpoConfig(max_kl=1e-2, ls_max_steps=10)
    flat0, _ = ravel_pytree(PARAMS)

    @jax.jit
    def steps():
        surrogate, kl_fn = _losses(ADVANTAGES)

        # 1. The surrogate has a descent direction, but a steep bowl around the params makes every
        #    tried step (down to 0.8^9 of the full one) raise it.
        def bowl(p):
            return surrogate(p) + 1e6 * jnp.sum((ravel_pytree(p)[0] - flat0) ** 2)

        # 2. The KL is offset by max_kl (same Fisher), so every candidate breaks the trust region.
        def offset_kl(p):
            return kl_fn(p) + config.max_kl

        # 3. Zero gradient (a flat surrogate): no step direction, s.Fs = 0, nothing is evaluated.
        def flat_surrogate(p):
            return 0.0 * surrogate(p)

        cases = [(bowl, kl_fn), (surrogate, offset_kl), (flat_surrogate, kl_fn)]
        return [trpo.trpo_step(s, k, PARAMS, config) for s, k in cases]

    for (new, info), ls_steps in zip(steps(), [10, 10, 0]):
        _assert_reverted(new, info, ls_steps)


def test_trpo_step_vmaps_over_problems():
    # Two advantage vectors: one improvable, one all zero (a flat surrogate: reverts).
    new, info, *_ = jax.jit(jax.vmap(_step))(np.stack([ADVANTAGES, np.zeros(BATCH, np.float32)]))
    np.testing.assert_array_equal(info.accepted, [True, False])
    single, *_ = _step(ADVANTAGES)
    np.testing.assert_allclose(new["W"][0], single["W"], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(new["W"][1], PARAMS["W"])


def test_joint_surrogate_and_kl_gives_the_same_step():
    @jax.jit
    def both(advantages):
        surrogate, kl_fn = _losses(advantages)
        joint = trpo.trpo_step(surrogate, kl_fn, PARAMS, surrogate_and_kl=lambda p: (surrogate(p), kl_fn(p)))
        return trpo.trpo_step(surrogate, kl_fn, PARAMS), joint

    (new, info), (new_joint, info_joint) = both(ADVANTAGES)
    for a, b in zip(jax.tree.leaves((new, info)), jax.tree.leaves((new_joint, info_joint))):
        np.testing.assert_allclose(a, b, rtol=1e-6)
