"""Pure rollouts: one scan, a step-by-step reference, vmap over episodes, NaN-safe returns."""

import jax
import jax.numpy as jnp
import numpy as np
from brax.envs import base as brax_base

from hyperjax.envs import registry
from hyperjax.train import rollout


def _policy(params, obs, key):
    return jnp.tanh(params * obs[:1]) + 0.1 * jax.random.normal(key, (1,))


def test_rollout_matches_a_step_by_step_loop_and_vmaps():
    env = registry.make("pendulum", episode_length=30)
    key = jax.random.key(0)
    traj = jax.jit(rollout.rollout, static_argnums=(0, 1, 4))(env, _policy, 0.5, key, 40)
    assert traj.obs.shape == (40, env.observation_size) and traj.action.shape == (40, 1)
    assert traj.reward.shape == traj.done.shape == traj.truncation.shape == (40,)
    # the time limit ends the episode at step 30, as a truncation
    assert float(traj.done[29]) == 1.0 and float(traj.truncation[29]) == 1.0 and float(traj.done[:29].max()) == 0.0
    reset_key, policy_key = jax.random.split(key)
    state, step_keys = env.reset(reset_key), jax.random.split(policy_key, 40)
    for t in range(5):
        action = _policy(0.5, state.obs, step_keys[t])
        np.testing.assert_allclose(traj.obs[t], state.obs, rtol=1e-6, atol=1e-6)
        state = env.step(state, action)
        np.testing.assert_allclose(traj.reward[t], state.reward, rtol=1e-6, atol=1e-6)
    ret = rollout.episode_return(traj)
    np.testing.assert_allclose(ret, traj.reward[:30].sum(), rtol=1e-5)  # steps after the end left out
    # vmapped over episodes (and, the same way, tasks or seeds)
    keys = jax.random.split(jax.random.key(1), 3)
    many = jax.vmap(lambda k: rollout.episode_return(rollout.rollout(env, _policy, 0.5, k, 40)))(keys)
    assert many.shape == (3,) and len(set(np.round(np.asarray(many), 4))) == 3


class _NaNAfterTerminal(brax_base.Env):
    """Terminates at step 3 (reward 1 per step); every later step rewards NaN."""

    observation_size, action_size, backend = 1, 1, "none"

    def reset(self, rng):
        zero = jnp.zeros(())
        return brax_base.State(None, jnp.zeros(1), zero, zero, {}, {"truncation": zero, "t": zero})

    def step(self, state, action):
        t = state.info["t"] + 1
        reward = jnp.where(state.done > 0, jnp.nan, 1.0)
        done = jnp.where(t >= 3, 1.0, 0.0)
        return state.replace(reward=reward, done=done, info={**state.info, "t": t})


def test_a_nan_after_the_terminal_leaves_the_return_finite():
    traj = rollout.rollout(_NaNAfterTerminal(), lambda p, o, k: o, None, jax.random.key(0), 8)
    assert bool(jnp.isnan(traj.reward[3:]).all())
    np.testing.assert_array_equal(rollout.valid_mask(traj.done), [1, 1, 1, 0, 0, 0, 0, 0])
    assert float(rollout.episode_return(traj)) == 3.0
    np.testing.assert_array_equal(traj.info["t"], np.arange(1, 9))  # info comes along, [T, ...]
