"""How well a critic's action-gradient points where the return rises (the paper's Fig. 3).

For one parameter snapshot of an actor-critic agent (``Agent.snapshot``) and per seed:

1. ``num_states`` states, each reached by running the deterministic actor from a reset for
   ``n ~ U[0, horizon)`` counted steps (an episode that ends on the way is reset and continues, and
   its end counts one step more, as the authors' ``bias_test.py`` ``run_policy`` does). The env state
   is a pytree: it is simply kept.
2. At each state, ``num_actions`` actions: the actor's ``a_mu`` and ``num_actions - 1`` perturbed
   ones, ``clip(a_mu + N(0, noise_std^2), -1, 1)``. Each is applied for the first
   ``action_repeat`` steps, then the deterministic actor follows; the return is discounted
   (``gamma``, exponent = step index from 0) to termination or the episode's time limit, where the
   min of the target critics at the actor's action is added, discounted by the steps taken.
3. The "true" gradient: least squares over all pairwise differences (``dR ~ dA g``), which is the
   slope of an OLS fit of return on action with an intercept.
4. Its cosine similarity (CS) with ``dQ1/da`` of the online critic at ``a_mu``. Where either
   gradient is exactly zero the CS is undefined: NaN, which counts as "not above any threshold".

Everything for all seeds, states and actions is one program (``make_program``): ``S x num_states``
reaching rollouts and ``S x num_states x num_actions`` return rollouts of ``horizon`` steps.
"""

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
from brax.envs import base as brax_base

from hyperjax.agents import base


@dataclasses.dataclass(frozen=True)
class GradientConfig:
    """The estimate's sizes; defaults are the paper's (and the authors' ``bias_test.py``)."""

    num_states: int = 15  # Ns
    num_actions: int = 15  # Nr, the actor's action included
    noise_std: float = 0.3
    action_repeat: int = 3
    gamma: float = 0.99


def least_squares_gradient(actions: jax.Array, returns: jax.Array) -> jax.Array:
    """The slope ``g [A]`` of an OLS fit ``R ~ c + a . g`` over ``actions [N, A]``, ``returns [N]``
    (the same ``g`` as least squares over all pairwise differences ``R_i - R_j ~ (a_i - a_j) . g``)."""
    centred = actions - actions.mean(axis=0)
    return jnp.linalg.lstsq(centred, returns - returns.mean())[0]


def cosine_similarity(a: jax.Array, b: jax.Array) -> jax.Array:
    """``a . b / (|a| |b|)`` over the last axis; NaN where either is zero."""
    norms = jnp.linalg.norm(a, axis=-1) * jnp.linalg.norm(b, axis=-1)
    return jnp.where(norms > 0, jnp.sum(a * b, axis=-1) / jnp.where(norms > 0, norms, 1.0), jnp.nan)


def _select(pred, on_true, on_false):
    return jax.tree.map(lambda t, f: jnp.where(pred, t, f), on_true, on_false)


def reach_state(env: brax_base.Env, act: Callable, snapshot, key: jax.Array, horizon: int) -> brax_base.State:
    """The env state after the deterministic actor ran from a reset until ``n ~ U[0, horizon)`` steps
    were counted: each step counts 1, a step that ends an episode (the env resets) 2, as the authors'
    ``run_policy`` (``bias_test.py``: ``n += 1`` per step and once more on ``done``)."""
    n_key, reset_key, key = jax.random.split(key, 3)
    n = jax.random.randint(n_key, (), 0, horizon)

    def step(carry, step_key):
        state, counted = carry
        moved = env.step(state, act(snapshot, state.obs))
        done = moved.done > 0
        moved = _select(done, env.reset(step_key), moved)  # an ended episode starts again
        taken = counted < n
        return (_select(taken, moved, state), counted + jnp.where(taken, 1 + done, 0)), ()

    start = (env.reset(reset_key), jnp.zeros((), jnp.int32))
    return jax.lax.scan(step, start, jax.random.split(key, horizon))[0][0]  # n < horizon steps at most


def action_return(
    env: brax_base.Env, agent: base.Agent, snapshot, state: brax_base.State, action: jax.Array, config: GradientConfig
) -> jax.Array:
    """The discounted return of ``action`` held for ``action_repeat`` steps, then the actor, to the
    episode's end; bootstrapped with the min target critic where the time limit ends it."""
    horizon = env.episode_length

    def step(carry):
        state, total, alive, t = carry
        policy_action = agent.act(snapshot, state.obs)
        moved = env.step(state, jnp.where(t < config.action_repeat, action, policy_action))
        return moved, total + config.gamma**t * moved.reward, moved.done <= 0, t + 1

    # a while loop, not a scan: vmapped, it runs until the batch's longest episode ends (early in
    # training Hopper falls within a few hundred steps), and an ended rollout's carry is frozen
    start = (state, jnp.zeros(()), jnp.ones((), bool), jnp.zeros((), jnp.int32))
    end, total, _, steps = jax.lax.while_loop(lambda c: c[2] & (c[3] < horizon), step, start)
    # the bootstrap, once per rollout at its end (not a critic forward every step)
    tail_action = agent.act(snapshot, end.obs)
    tail = jnp.min(agent.q_values(snapshot, end.obs[None], tail_action[None], True)[:, 0])
    truncated = end.info["truncation"] > 0
    return total + jnp.where(truncated, config.gamma**steps * tail, 0.0)


def state_gradients(
    env: brax_base.Env, agent: base.Agent, snapshot, key: jax.Array, config: GradientConfig
) -> dict[str, jax.Array]:
    """One seed's estimate: ``cs [Ns]``, ``true_norm [Ns]``, ``model_norm [Ns]`` and the step
    counts ``steps [Ns]`` of the states (within their episode)."""
    reach_keys = jax.random.split(jax.random.fold_in(key, 0), config.num_states)
    noise_keys = jax.random.split(jax.random.fold_in(key, 1), config.num_states)
    states = jax.vmap(lambda k: reach_state(env, agent.act, snapshot, k, env.episode_length))(reach_keys)

    def one_state(state, noise_key):
        a_mu = agent.act(snapshot, state.obs)
        noise = config.noise_std * jax.random.normal(noise_key, (config.num_actions - 1, a_mu.shape[-1]))
        actions = jnp.concatenate([a_mu[None], jnp.clip(a_mu + noise, -1.0, 1.0)])
        returns = jax.vmap(lambda a: action_return(env, agent, snapshot, state, a, config))(actions)
        true = least_squares_gradient(actions, returns)
        model = jax.grad(lambda a: agent.q_values(snapshot, state.obs[None], a[None], False)[0, 0])(a_mu)
        return cosine_similarity(true, model), jnp.linalg.norm(true), jnp.linalg.norm(model)

    cs, true_norm, model_norm = jax.vmap(one_state)(states, noise_keys)
    steps = states.info["steps"] if "steps" in states.info else jnp.full(config.num_states, jnp.nan)
    return {"cs": cs, "true_norm": true_norm, "model_norm": model_norm, "steps": steps}


def make_program(env: brax_base.Env, agent: base.Agent, config: GradientConfig) -> Callable:
    """``(snapshots [S, ...], keys [S]) -> {name: [S, Ns]}``: every seed's estimate in one program."""
    return jax.jit(jax.vmap(lambda snapshot, key: state_gradients(env, agent, snapshot, key, config)))


THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(21))  # tau in [0, 1]


def fraction_above(cs, thresholds=THRESHOLDS):
    """The fraction of states whose CS exceeds each tau (NaN counts as not above): ``[len(thresholds)]``."""
    cs = jnp.asarray(cs).reshape(-1)
    return jnp.stack([jnp.mean(jnp.nan_to_num(cs, nan=-jnp.inf) > tau) for tau in thresholds])
