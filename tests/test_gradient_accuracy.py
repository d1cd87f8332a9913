"""The critic-gradient analysis (Fig. 3): the least-squares gradient and the cosine similarity on toy
problems with known answers, the discounted, bootstrapped return, and snapshots of a real run."""

import argparse
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from brax.envs import base as brax_base

from hyperjax.agents import base
from hyperjax.agents import registry as algorithms
from hyperjax.analysis import gradient_accuracy as ga
from hyperjax.experiments import runner
from hyperjax.train import checkpoint

OBS, ACT = 3, 2
W = jnp.array([[1.0, -2.0, 0.5], [0.3, 1.0, -1.0]])  # the return's gradient at s is W s


class LinearBandit(brax_base.Env):
    """One step per episode, reward ``(W s) . a``: the return is exactly linear in the action."""

    episode_length = 10

    def reset(self, rng):
        obs = jax.random.uniform(rng, (OBS,), minval=-1.0, maxval=1.0)
        return brax_base.State(None, obs, jnp.zeros(()), jnp.zeros(()), {}, {"truncation": jnp.zeros(())})

    def step(self, state, action):
        reward = jnp.dot(W @ state.obs, action)
        return state.replace(reward=reward, done=jnp.ones(()))

    @property
    def observation_size(self):
        return OBS

    @property
    def action_size(self):
        return ACT

    @property
    def backend(self):
        return "toy"


W2 = jnp.stack([-W[1], W[0]])  # Q2's: W s turned by 90 degrees, orthogonal to the return's gradient


def toy_agent(target_values: tuple[float, float] = (0.0, 0.0)) -> base.Agent:
    """A fixed actor; online critics Q1 = ``sign * (W s) . a`` (``snapshot['sign']``, the return's
    true gradient) and Q2 = ``(W2 s) . a - 100`` (below Q1 at every action the tests use, so min Q is
    Q2: an analysis that used Q2 or min Q would see W2's gradient); the target critics give the
    constants ``target_values`` (Q̄1, Q̄2)."""

    def act(snapshot, obs):
        return 0.5 * jnp.tanh(obs[..., :ACT])

    def q_values(snapshot, obs, action, target):
        if target:
            return jnp.broadcast_to(jnp.asarray(target_values)[:, None], (2, obs.shape[0]))
        q1 = snapshot["sign"] * jnp.sum((obs @ W.T) * action, axis=-1)
        q2 = jnp.sum((obs @ W2.T) * action, axis=-1) - 100.0
        return jnp.stack([q1, q2])

    return base.Agent(init=None, explore=None, act=act, update=None, q_values=q_values, snapshot=lambda s: s)


def test_least_squares_gradient_is_the_ols_slope_and_the_pairwise_solution():
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (15, 4))
    g = np.array([0.5, -1.0, 2.0, 0.1])
    returns = 3.0 + actions @ g + 0.01 * rng.normal(size=15)
    est = np.asarray(ga.least_squares_gradient(jnp.asarray(actions), jnp.asarray(returns)))
    pair_a = (actions[:, None] - actions[None]).reshape(-1, 4)  # all ordered pairs, i = j included
    pair_r = (returns[:, None] - returns[None]).reshape(-1)
    np.testing.assert_allclose(est, np.linalg.lstsq(pair_a, pair_r, rcond=None)[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(est, g, atol=0.05)


def test_cosine_similarity_is_one_for_the_true_critic_and_minus_one_for_its_negation():
    """The model gradient is the online Q1's (the authors' ``estimate_gradient``): Q2, min Q or the
    target critics would point elsewhere (W2, or nowhere: constants)."""
    env, agent = LinearBandit(), toy_agent()
    config = ga.GradientConfig(num_states=6, num_actions=8)
    program = ga.make_program(env, agent, config)
    keys = jax.vmap(jax.random.key)(jnp.arange(2))
    for sign in (1.0, -1.0):
        out = program({"sign": jnp.full((2,), sign)}, keys)
        assert out["cs"].shape == (2, 6)
        np.testing.assert_allclose(out["cs"], sign, atol=1e-3)  # CS > 0.99 (or < -0.99)
    assert float(ga.fraction_above(out["cs"], (0.0,))[0]) == 0.0
    # the toy's Q2 is a real alternative: its gradient is orthogonal to the return's (CS 0)
    s = env.reset(jax.random.key(0)).obs
    assert abs(float(ga.cosine_similarity(W @ s, W2 @ s))) < 1e-6


class Drift(brax_base.Env):
    """Never terminates; reward = first action component; ends by its time limit after 5 steps."""

    episode_length = 5

    def reset(self, rng):
        info = {"truncation": jnp.zeros(()), "steps": jnp.zeros(())}
        return brax_base.State(None, jnp.zeros(OBS), jnp.zeros(()), jnp.zeros(()), {}, info)

    def step(self, state, action):
        steps = state.info["steps"] + 1
        done = (steps >= self.episode_length).astype(jnp.float32)
        info = {"truncation": done, "steps": steps}
        return state.replace(reward=action[0], done=done, info=info)

    observation_size, action_size, backend = OBS, ACT, "toy"


def test_return_holds_the_action_then_follows_the_actor_and_bootstraps_at_the_time_limit():
    # target critics 7 and 4: the bootstrap is their min, 4 (Q̄1 alone would give 7, the online
    # critics at the end state 0 and -100)
    env, agent, config = Drift(), toy_agent(target_values=(7.0, 4.0)), ga.GradientConfig()
    start = env.reset(jax.random.key(0))  # the actor's action at obs 0 is 0: reward 0 after 3 steps
    got = ga.action_return(env, agent, {"sign": 1.0}, start, jnp.array([0.4, 0.0]), config)
    g = config.gamma
    np.testing.assert_allclose(float(got), 0.4 * (1 + g + g**2) + g**5 * 4.0, rtol=1e-6)


def _authors_run_policy(n: int, episode_length: int) -> int:
    """bias_test.py's run_policy by hand: the step count within the episode after ``n`` counted steps
    (every step counts 1, and a step that ends the episode 1 more)."""
    counted, steps = 0, 0
    while counted < n:
        steps, counted = steps + 1, counted + 1
        if steps >= episode_length:
            steps, counted = 0, counted + 1
    return steps


def test_states_are_reached_as_the_authors_run_policy_counts():
    env, agent, horizon = Drift(), toy_agent(), 14  # episodes of 5 steps: 0 to 2 resets on the way
    keys = jax.random.split(jax.random.key(3), 40)
    reach = jax.jit(jax.vmap(lambda k: ga.reach_state(env, agent.act, {"sign": 1.0}, k, horizon).info["steps"]))
    got = np.asarray(reach(keys))
    n = [int(jax.random.randint(jax.random.split(k, 3)[0], (), 0, horizon)) for k in keys]  # reach_state's n
    assert len(set(n)) > 8 and max(n) >= 12  # the draws reach past two episode ends
    np.testing.assert_array_equal(got, [_authors_run_policy(i, env.episode_length) for i in n])


@pytest.mark.slow  # ~3 min of training and subprocesses; the analysis itself is tested above
def test_snapshots_restore_bit_exactly_and_the_cli_analyses_them(tmp_path):
    logdir = str(tmp_path / "run")
    algorithm = algorithms.get("td3")
    agent_config = algorithm.make_config(critic="mlp", start_steps=50, batch_size=32, actor_hidden_sizes=(32, 32))
    agent_config.critic_overrides = {"hidden_sizes": (32, 32)}
    run_config = runner.RunConfig(
        env="pendulum",
        episode_length=50,
        num_seeds=2,
        total_steps=200,
        eval_every=100,
        eval_episodes=1,
        buffer_size=1000,
        snapshot_every=100,
        logdir=logdir,
    )
    result = runner.run("td3", run_config, agent_config, verbose=False)
    mngr = checkpoint.manager(f"{logdir}/{runner.SNAPSHOTS}", max_to_keep=None)
    assert sorted(mngr.all_steps()) == [0, 100, 200]
    agent = algorithm.make_agent(agent_config, 3, 1)
    keys = jax.vmap(jax.random.key)(jnp.arange(2))
    abstract = jax.eval_shape(jax.vmap(lambda k: agent.snapshot(agent.init(k))), keys)
    restored = checkpoint.restore(mngr, 200, abstract)
    expected = agent.snapshot(result["state"].agent)
    assert jax.tree.structure(restored) == jax.tree.structure(expected)
    for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(expected)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert expected.actor_opt is None and expected.critic_params is not None  # no optimiser state kept

    cmd = [sys.executable, "-m", "hyperjax.experiments.gradient_accuracy", f"--run={logdir}", "--num_states=3"]
    cmd += ["--num_actions=4", f"--out={tmp_path / 'fig'}"]
    subprocess.run([*cmd, "--last_step=100"], check=True, capture_output=True, text=True, timeout=600)
    rows = (tmp_path / "run" / "gradient_accuracy.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 2 * 3  # header + snapshots (0 and 100) x seeds x states
    assert "100: " in (tmp_path / "fig" / "gradient_accuracy.md").read_text()
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=600)  # adds the 200 snapshot
    rows = (tmp_path / "run" / "gradient_accuracy.csv").read_text().splitlines()
    assert len(rows) == 1 + 3 * 2 * 3
    assert (tmp_path / "fig" / "gradient_accuracy.png").stat().st_size > 0
    assert "| mlp |" in (tmp_path / "fig" / "gradient_accuracy.md").read_text()

    bad = subprocess.run(cmd[:3] + [f"--run={tmp_path / 'nowhere'}"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and bad.stderr.strip().splitlines()[-1].startswith("error: ")


def test_fig3_at_paper_scale_analyses_the_authors_snapshots_0_to_590k():
    from experiments import fig4

    runs = fig4.runs("paper", ["hopper"])
    paper = fig4.gradient_report(argparse.Namespace(out="out", scale="paper"), "runs", runs).action
    cpu = fig4.gradient_report(argparse.Namespace(out="out", scale="cpu"), "runs", runs).action
    assert "--last_step=590000" in paper and not any(c.startswith("--last_step") for c in cpu)
    assert "--snapshot_every=10000" in runs[0].flags
