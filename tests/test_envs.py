"""Environment registry and the pure-JAX pendulum."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from brax.envs import ant as brax_ant
from brax.envs import half_cheetah as brax_cheetah
from brax.envs import hopper as brax_hopper

from hyperjax.envs import gym_tasks, locomotion, pendulum, registry


def test_registry_names_and_errors():
    for name in ("pendulum", "ant", "halfcheetah", "hopper", "walker2d"):
        assert name in registry.ENVS
    with pytest.raises(ValueError, match=r"unknown env 'antt'; valid: pendulum, ant"):
        registry.make("antt")
    with pytest.raises(ValueError, match=r"unknown backend 'bullet'; valid: mjx, generalized, positional, spring"):
        registry.make("ant", backend="bullet")
    with pytest.raises(ValueError, match=r"episode_length must be >= 1"):
        registry.make("pendulum", episode_length=0)


def test_paper_preset_sets_the_authors_ant_reward():
    # the reward and the 111-dim observation by hand: tests/test_meta_envs.py
    paper = registry.make("ant", physics="brax").unwrapped
    brax_default = registry.make("ant", backend="spring", preset="brax").unwrapped
    assert isinstance(paper, locomotion.PaperAnt) and type(brax_default) is brax_ant.Ant
    assert paper._contact_forces == "mujoco"  # physics 'brax' keeps MJX's contact forces, as before
    gym_paper = registry.make("ant").unwrapped  # the default: Gym's model file (tests/test_paper_physics.py)
    assert isinstance(gym_paper, gym_tasks.PaperAnt) and gym_paper.ctrl_cost_weight == 0.0
    for name, brax_class in (("hopper", brax_hopper.Hopper), ("halfcheetah", brax_cheetah.Halfcheetah)):
        assert type(registry.make(name, physics="brax").unwrapped) is brax_class  # today's paper preset
        assert type(registry.make(name).unwrapped) is gym_tasks.SINGLE_TASK[name]
    assert paper._ctrl_cost_weight == 0.0 and brax_default._ctrl_cost_weight == 0.5
    assert paper._healthy_reward == 1.0 and tuple(paper._healthy_z_range) == (0.2, 1.0)
    assert paper._contact_cost_weight == 5e-4
    with pytest.raises(ValueError, match=r"^env 'ant' \(preset 'paper'\) needs contact forces, .* valid: mjx or"):
        registry.make("ant", backend="spring", physics="brax")


def test_pendulum_dynamics_by_hand():
    env = registry.make("pendulum")
    state = env.reset(jax.random.key(0))
    state = state.replace(pipeline_state=jnp.array([0.5, -1.0]))
    nxt = jax.jit(env.step)(state, jnp.array([0.5]))  # torque 1.0
    u, th, thdot = 1.0, 0.5, -1.0
    new_thdot = thdot + (3 * 10 / 2 * np.sin(th) + 3.0 * u) * 0.05
    np.testing.assert_allclose(nxt.pipeline_state, [th + new_thdot * 0.05, new_thdot], rtol=1e-6)
    np.testing.assert_allclose(nxt.reward, -(th**2 + 0.1 * thdot**2 + 0.001 * u**2), rtol=1e-6)
    np.testing.assert_allclose(
        nxt.obs, [np.cos(th + new_thdot * 0.05), np.sin(th + new_thdot * 0.05), new_thdot], rtol=1e-6
    )
    assert env.observation_size == 3 and env.action_size == 1


def test_time_limit_marks_truncation():
    env = registry.make("pendulum", episode_length=3)
    state = env.reset(jax.random.key(0))
    step = jax.jit(env.step)
    for _ in range(3):
        state = step(state, jnp.zeros(1))
    assert float(state.done) == 1.0 and float(state.info["truncation"]) == 1.0
    assert pendulum.Pendulum().backend == "jax"
