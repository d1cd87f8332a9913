"""The throughput mode of the off-policy loop: several envs per seed, several updates per step."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from brax.envs import base as brax_base
from brax.envs.wrappers import training as brax_wrappers

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
    # given the count of gradient steps before each, 3(i - 1) + j: 0..26
    assert int(state.agent["count"]) == 27 and int(state.agent["step_sum"]) == sum(range(0, 27))
    assert int(state.agent["rows"]) == 8  # each update one minibatch of batch_size
    assert metrics["train_return"].shape == (1,) and np.isfinite(metrics["reward"]).all()


def test_paper_protocol_gives_the_agent_its_update_count():
    """One env, one update per step: the first update (env step update_after - 1) is given 0, as TD3's
    policy delay needs (the authors' total_it = count + 1), whatever env step it falls on."""
    env = registry.make("pendulum")
    config = loop.LoopConfig(
        batch_size=4, start_steps=0, update_after=7, buffer_size=100, eval_episodes=1, episode_length=200
    )
    trainer = loop.make_trainer(_counting_agent(env.action_size), env, config)
    state = trainer.init(jax.random.key(0)[None])
    state, _ = trainer.run_chunk(state, 0, 10)
    state, _ = trainer.run_chunk(state, 10, 5)  # a second call continues the count
    # env steps 6..14 update (the buffer holds 7 after step 6): 9 updates given 0..8
    assert int(state.agent["count"]) == 9 and int(state.agent["step_sum"]) == sum(range(9))


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


def test_distinct_indices_are_distinct_and_every_subset_equally_likely():
    draw = jax.jit(jax.vmap(replay.distinct_indices, (0, None, None)), static_argnums=2)
    tight = np.asarray(draw(jax.random.split(jax.random.key(0), 20), jnp.int32(257), 256))  # 1 slot to spare
    assert all(len(set(row)) == 256 and row.min() >= 0 and row.max() < 257 for row in tight)
    # 5 choose 2 = 10 subsets, 20,000 draws: each subset 2,000 times, binomial sd 42
    pairs = np.sort(np.asarray(draw(jax.random.split(jax.random.key(1), 20_000), jnp.int32(5), 2)), axis=1)
    assert (pairs[:, 0] < pairs[:, 1]).all()
    counts = np.bincount(pairs[:, 0] * 5 + pairs[:, 1], minlength=25)[
        [5 * i + j for i in range(5) for j in range(i + 1, 5)]
    ]
    assert np.abs(counts - 2000).max() < 210, counts  # 5 sd
    with_repeats = np.asarray(draw(jax.random.split(jax.random.key(2), 1), jnp.int32(3), 8))  # n < k: cannot
    assert with_repeats.shape == (1, 8) and with_repeats.max() < 3


def _repeat_counting_agent(action_size: int) -> base.Agent:
    """Counts the repeated transitions (equal rewards) over all its batches; acts with zeros."""
    zeros = lambda state, obs, key=None: jnp.zeros((action_size,))  # noqa: E731

    def update(state, batch, key, step):
        ordered = jnp.sort(batch.reward)
        return {"repeats": state["repeats"] + jnp.sum(ordered[1:] == ordered[:-1])}, {}

    return base.Agent(init=lambda key: {"repeats": jnp.int32(0)}, explore=zeros, act=zeros, update=update)


@pytest.mark.parametrize("num_envs,updates_per_step", [(1, 1), (2, 3)])
def test_batches_without_replacement_hold_distinct_transitions(num_envs, updates_per_step):
    env = registry.make("pendulum")
    repeats = {}
    for replace in (True, False):
        config = loop.LoopConfig(
            batch_size=32,
            start_steps=1000,
            update_after=34,  # one transition to spare at the first update
            buffer_size=1000,
            eval_episodes=1,
            episode_length=200,
            num_envs=num_envs,
            updates_per_step=updates_per_step,
            sample_with_replacement=replace,
        )
        trainer = loop.make_trainer(_repeat_counting_agent(env.action_size), env, config)
        state, _ = trainer.run_chunk(trainer.init(jax.random.key(0)[None]), 0, 60)
        repeats[replace] = int(state.agent["repeats"])
    assert repeats[False] == 0 and repeats[True] > 50, repeats  # random rewards: equal only when repeated


class _ActionReward(brax_base.Env):
    """A toy env: the reward is the action's first entry as given (no clipping); the start state
    (obs) is drawn from the reset key."""

    def reset(self, rng):
        obs = jax.random.uniform(rng, (2,))
        return brax_base.State(pipeline_state=None, obs=obs, reward=jnp.zeros(()), done=jnp.zeros(()))

    def step(self, state, action):
        return state.replace(reward=action[0])

    @property
    def observation_size(self):
        return 2

    @property
    def action_size(self):
        return 1

    @property
    def backend(self):
        return "toy"


def test_evaluation_policies_and_start_states():
    """``eval_policies`` are evaluated beside ``act``, their actions reach the env unclipped, from
    the same start states; with ``same_eval_starts`` every evaluation starts from the same states."""
    env = brax_wrappers.EpisodeWrapper(_ActionReward(), episode_length=5, action_repeat=1)
    agent = base.Agent(
        init=lambda key: {},
        explore=lambda state, obs, key: obs[:1],
        act=lambda state, obs: obs[:1],  # reward = the start state's first entry, every step
        update=lambda state, batch, key, step: (state, {}),
        eval_policies={"triple": lambda state, obs: 3.0 * obs[:1] + 2.0},  # outside [-1, 1]
    )
    returns = {}
    for same in (True, False):
        config = loop.LoopConfig(
            batch_size=2,
            start_steps=0,
            update_after=3,
            buffer_size=10,
            eval_episodes=4,
            episode_length=5,
            same_eval_starts=same,
        )
        trainer = loop.make_trainer(agent, env, config)
        assert trainer.extra_returns == ("return_triple",)
        state = trainer.init(jax.random.key(0)[None])
        returns[same] = [jax.device_get(trainer.evaluate(state, step)) for step in (0, 5000)]
    for evaluation in returns[True] + returns[False]:  # same start states for both policies
        assert set(evaluation) == {"return", "return_triple"} and evaluation["return"].shape == (1, 4)
        np.testing.assert_allclose(evaluation["return_triple"], 3.0 * evaluation["return"] + 10.0, rtol=1e-6)
    np.testing.assert_array_equal(returns[True][0]["return"], returns[True][1]["return"])
    assert not np.allclose(returns[False][0]["return"], returns[False][1]["return"])
