"""The throughput mode of the off-policy loop: several envs per seed, several updates per step."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hyperjax import types
from hyperjax.agents import base, sac
from hyperjax.envs import registry
from hyperjax.experiments import runner
from hyperjax.train import logger, loop, replay


def _transitions(start, n):
    value = jnp.arange(start, start + n, dtype=jnp.float32)
    return types.Transition(
        obs=value[:, None], action=value[:, None], reward=value, discount=value, next_obs=value[:, None]
    )


def test_add_batch_equals_one_by_one_adds_across_the_wrap():
    example = jax.tree.map(lambda x: x[0], _transitions(0, 1))
    one_by_one = batched = replay.init(5, example)
    for start in (0, 3):  # 3 then 3 more: the second batch wraps around the 5 slots
        batch = _transitions(start, 3)
        batched = replay.add_batch(batched, batch)
        for i in range(3):
            one_by_one = replay.add(one_by_one, jax.tree.map(lambda x: x[i], batch))  # noqa: B023
    for a, b in zip(jax.tree.leaves(batched), jax.tree.leaves(one_by_one), strict=True):
        np.testing.assert_array_equal(a, b)
    assert list(np.asarray(batched.data.reward)) == [5, 1, 2, 3, 4] and int(batched.size) == 5


def _counting_agent(action_size: int) -> base.Agent:
    """Counts its updates and sums the gradient-step indices it is given; acts with zeros."""
    zeros = lambda state, obs, key=None: jnp.zeros((action_size,))  # noqa: E731

    def update(state, batch, key, step):
        new = {"count": state["count"] + 1, "step_sum": state["step_sum"] + step, "rows": batch.reward.shape[0]}
        return new, {"reward": batch.reward.mean()}

    init = lambda key: {"count": jnp.int32(0), "step_sum": jnp.int32(0), "rows": 0}  # noqa: E731
    return base.Agent(init=init, explore=zeros, act=zeros, update=update)


def test_envs_and_updates_per_step_counts():
    env = registry.make("pendulum")
    config = loop.LoopConfig(
        batch_size=8,
        start_steps=0,
        update_after=4,
        buffer_size=100,
        eval_episodes=1,
        episode_length=200,
        num_envs=2,
        updates_per_step=3,
    )
    trainer = loop.make_trainer(_counting_agent(env.action_size), env, config)
    assert trainer.step_multiple == 2
    state = trainer.init(jax.random.key(0)[None])
    state, metrics = trainer.run_chunk(state, 0, 20)  # 10 iterations of 2 envs
    assert int(state.replay.size) == 20 and state.env_state.obs.shape == (2, 3)
    # iteration i (env steps 2i, 2i+1) is ready once 2i + 2 >= 4: i = 1..9, 3 updates each,
    # given gradient-step indices 3i + j: 3..29
    assert int(state.agent["count"]) == 27 and int(state.agent["step_sum"]) == sum(range(3, 30))
    assert int(state.agent["rows"]) == 8  # each update one minibatch of batch_size
    assert metrics["train_return"].shape == (1,) and np.isfinite(metrics["reward"]).all()


def _sac(hidden: int, **kw) -> sac.SACConfig:
    return sac.SACConfig(
        critic="mlp", critic_overrides=dict(hidden_sizes=(hidden,) * 2), actor_hidden_sizes=(hidden,) * 2, **kw
    )


def _pendulum(tmp_path, **kw) -> runner.RunConfig:
    return runner.RunConfig(env="pendulum", logdir=str(tmp_path / "run"), **kw)


def test_throughput_mode_learns_pendulum(tmp_path):
    """4 envs per seed, 4 updates per iteration (one minibatch sample, scanned) still learns."""
    agent = _sac(64, num_envs=4, updates_per_step=4)
    run = _pendulum(
        tmp_path, total_steps=8000, eval_every=2000, checkpoint_every=4000, eval_episodes=5, buffer_size=20_000
    )
    result = runner.run("sac", run, agent, verbose=False)
    rows = logger.read_csv(os.path.join(result["logdir"], "metrics.csv"))
    assert [int(r["step"]) for r in rows] == [0, 2000, 4000, 6000, 8000]
    assert float(rows[0]["return_mean"]) < -900
    assert max(float(r["return_mean"]) for r in rows[-2:]) > -550, [r["return_mean"] for r in rows]


@pytest.mark.parametrize("num_envs", [1, 4])
def test_step_counts_stay_multiples_of_num_envs(tmp_path, num_envs):
    agent = _sac(16, batch_size=32, start_steps=100, num_envs=num_envs)
    run = _pendulum(tmp_path, total_steps=400, eval_every=200, checkpoint_every=200, eval_episodes=1, buffer_size=1000)
    result = runner.run("sac", run, agent, verbose=False)
    assert result["step"] == 400 and int(np.asarray(result["state"].replay.size)) == 400
