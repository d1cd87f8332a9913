"""TRPO's natural-gradient step: conjugate gradient on Fisher-vector products, then a line search.

As pytorch-maml-rl's ``conjugate_gradient`` and ``MetaLearner.step`` (Schulman et al. 2015,
appendix C), the code base the paper's authors built on. Pure functions over parameter pytrees;
the surrogate and the KL are plain differentiable functions of the parameters (MAML's include the
inner adaptation step), used only through ``grad``, ``jvp`` and evaluation. No Python control flow
on values: the CG and the line search are ``lax.while_loop``s, so a step jits and vmaps.
Tested in tests/test_trpo.py.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

Params = Any


def conjugate_gradient(
    matvec: Callable[[jax.Array], jax.Array], b: jax.Array, iters: int = 10, residual_tol: float = 1e-10
) -> jax.Array:
    """Approximately solve ``A x = b`` for a symmetric positive-definite ``A`` given as ``matvec``.

    Args:
      matvec: ``v [n] -> A v [n]``.
      b: ``[n]``.
      iters: at most this many iterations (one ``matvec`` each).
      residual_tol: stop once the residual's squared norm ``r.r`` falls below it.

    Returns:
      ``x [n]``, starting from 0. The authors' loop: the first update always runs, ``r.r`` is
      checked after each. ``b = 0`` returns 0 (the authors' code divides 0 by 0 there).
    """

    def cond(carry):
        i, _, _, _, rdotr = carry
        return (i < iters) & ((i == 0) | (rdotr >= residual_tol))

    def body(carry):
        i, x, r, p, rdotr = carry
        z = matvec(p)
        v = jnp.where(rdotr > 0, rdotr / jnp.dot(p, z), 0.0)
        x = x + v * p
        r = r - v * z
        new_rdotr = jnp.dot(r, r)
        p = r + jnp.where(rdotr > 0, new_rdotr / rdotr, 0.0) * p
        return i + 1, x, r, p, new_rdotr

    init = (jnp.zeros((), jnp.int32), jnp.zeros_like(b), b, b, jnp.dot(b, b))
    return jax.lax.while_loop(cond, body, init)[1]


def fisher_vector_product(
    kl_fn: Callable[[Params], jax.Array], params: Params, damping: float
) -> Callable[[jax.Array], jax.Array]:
    """``v -> H v + damping v``, ``H`` the Hessian of ``kl_fn`` at ``params`` (flat ``[n]`` vectors).

    With ``kl_fn(p) = KL(pi_old || pi_p)`` and ``old = params`` this is the Fisher information
    times ``v``. Forward-over-reverse (``jvp`` of ``grad``), linearised once at ``params`` so each
    product reuses the forward pass; no matrix is formed. Flat vectors follow ``ravel_pytree``.
    """
    flat, unravel = ravel_pytree(params)

    def flat_grad(f):
        return ravel_pytree(jax.grad(kl_fn)(unravel(f)))[0]

    _, hvp = jax.linearize(flat_grad, flat)

    def fvp(v: jax.Array) -> jax.Array:
        return hvp(v) + damping * v

    return fvp


class TrpoConfig(NamedTuple):
    """The trust region and its solvers (defaults: the authors' MAML-TRPO configs)."""

    max_kl: float = 1e-2
    cg_iters: int = 10
    cg_damping: float = 1e-5
    cg_residual_tol: float = 1e-10
    ls_ratio: float = 0.8
    ls_max_steps: int = 20


DEFAULT_CONFIG = TrpoConfig()


class TrpoInfo(NamedTuple):
    """What one step did (scalars).

    ``kl`` is ``kl_fn`` at the accepted params and ``step_size`` the accepted fraction of the full
    step, both 0 if reverted; ``loss_after`` equals ``loss_before`` if reverted; ``ls_steps`` counts
    the candidates evaluated (0 when the step direction was unusable).
    """

    loss_before: jax.Array
    loss_after: jax.Array
    kl: jax.Array
    step_size: jax.Array
    accepted: jax.Array
    ls_steps: jax.Array


def trpo_step(
    surrogate: Callable[[Params], jax.Array],
    kl_fn: Callable[[Params], jax.Array],
    params: Params,
    config: TrpoConfig = DEFAULT_CONFIG,
    surrogate_and_kl: Callable[[Params], tuple[jax.Array, jax.Array]] | None = None,
) -> tuple[Params, TrpoInfo]:
    """One TRPO step minimising ``surrogate`` subject to ``kl_fn <= max_kl`` (``MetaLearner.step``).

    Args:
      surrogate: ``params -> []``, the loss to lower (e.g. minus the importance-weighted advantage).
      kl_fn: ``params -> []``, the KL between the old policy (fixed by the caller) and the new one,
        in either order (so ~0 at ``params``); its Hessian there is the Fisher matrix. MAML passes
        the authors' ``KL(new || old)``, which the line search then bounds.
      params: the current parameters (a pytree).
      surrogate_and_kl: optional ``params -> (surrogate, kl)`` computing both in one pass (e.g.
        where both share an expensive inner adaptation); the line search then calls it once per
        candidate instead of the two functions.

    Returns:
      ``(new_params, TrpoInfo)``. Step direction ``s = CG(F, g)`` with ``g = grad surrogate``;
      full step ``s / sqrt(s.F s / (2 max_kl))``; backtracking ``params - c * step`` for
      ``c = 1, ratio, ratio^2, ...`` until the surrogate decreases and ``kl_fn < max_kl``. After
      ``ls_max_steps`` failures, or if ``s.F s`` is not positive and finite, ``params`` come back.
    """
    flat, unravel = ravel_pytree(params)
    loss_before, grads = jax.value_and_grad(surrogate)(params)
    g = ravel_pytree(grads)[0]

    fvp = fisher_vector_product(kl_fn, params, config.cg_damping)
    stepdir = conjugate_gradient(fvp, g, config.cg_iters, config.cg_residual_tol)
    shs = 0.5 * jnp.dot(stepdir, fvp(stepdir))
    usable = (shs > 0) & jnp.isfinite(shs) & jnp.all(jnp.isfinite(stepdir))
    lagrange = jnp.sqrt(jnp.where(usable, shs, 1.0) / config.max_kl)
    step = jnp.where(usable, stepdir / lagrange, 0.0)

    def cond(carry):
        k, accepted, _, _, _ = carry
        return usable & ~accepted & (k < config.ls_max_steps)

    def body(carry):
        k, _, step_size, _, _ = carry
        candidate = unravel(flat - step_size * step)
        loss, kl = surrogate_and_kl(candidate) if surrogate_and_kl else (surrogate(candidate), kl_fn(candidate))
        loss, kl = jnp.asarray(loss, loss_before.dtype), jnp.asarray(kl, flat.dtype)
        ok = (loss - loss_before < 0) & (kl < config.max_kl)
        step_size = jnp.where(ok, step_size, step_size * config.ls_ratio)
        return k + 1, ok, step_size, loss, kl

    zero = jnp.zeros((), flat.dtype)
    init = (jnp.zeros((), jnp.int32), jnp.zeros((), bool), jnp.ones((), flat.dtype), loss_before, zero)
    ls_steps, accepted, step_size, loss, kl = jax.lax.while_loop(cond, body, init)

    new_params = unravel(jnp.where(accepted, flat - step_size * step, flat))
    info = TrpoInfo(
        loss_before=loss_before,
        loss_after=jnp.where(accepted, loss, loss_before),
        kl=jnp.where(accepted, kl, zero),
        step_size=jnp.where(accepted, step_size, zero),
        accepted=accepted,
        ls_steps=ls_steps,
    )
    return new_params, info
