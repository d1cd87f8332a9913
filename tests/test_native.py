"""Native-physics path: Gymnasium envs stepped by MuJoCo's C engine, trained by the host loop."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from hyperjax.agents import sac
from hyperjax.envs import native, registry
from hyperjax.experiments import runner
from hyperjax.train import logger
from tests import compiles

pytest.importorskip("gymnasium")


def test_names_and_errors():
    for name in ("Ant-v5", "HalfCheetah-v5", "Hopper-v5", "Walker2d-v5"):
        assert name in registry.ENVS and registry.is_native(name)
    assert not registry.is_native("ant")
    with pytest.raises(ValueError, match=r"unknown native env 'Ant-v2'; valid: Ant-v5, HalfCheetah-v5"):
        native.VecEnv("Ant-v2", 1)
    with pytest.raises(ValueError, match=r"Ant-v5 is a native-physics env"):
        registry.make("Ant-v5")


def test_missing_gymnasium_is_a_one_line_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "gymnasium", None)  # import gymnasium -> ImportError
    with pytest.raises(ValueError, match=r"need gymnasium: pip install 'hyperjax\[native\]'"):
        native.VecEnv("Hopper-v5", 1)


def test_ant_paper_preset_and_real_sizes():
    paper, default = native.VecEnv("Ant-v5", 1), native.VecEnv("Ant-v5", 1, preset="brax")
    # v5 observation: qpos[2:] 13 + qvel 14 + clipped contact forces 78 (the world body's are dropped)
    assert (paper.observation_size, paper.action_size, paper.episode_length) == (105, 8, 1000)
    unwrapped = paper.envs[0].unwrapped
    assert unwrapped._ctrl_cost_weight == 0.0 and default.envs[0].unwrapped._ctrl_cost_weight == 0.5
    assert unwrapped._healthy_reward == 1.0 and tuple(unwrapped._healthy_z_range) == (0.2, 1.0)
    # same seed, same action: the paper preset's reward lacks exactly the control cost
    action = np.full((1, 8), 0.5)
    paper.reset([3]), default.reset([3])
    r_paper, r_default = paper.step(action)[1][0], default.step(action)[1][0]
    np.testing.assert_allclose(r_paper - r_default, 0.5 * np.sum(action**2), rtol=1e-5)


def test_actions_rescaled_and_episodes_restart():
    env = native.VecEnv("Pendulum-v1", 2, episode_length=5)  # torque bounds [-2, 2]
    obs = env.reset([0, 1])
    assert obs.shape == (2, 3) and obs.dtype == np.float32
    env.envs[0].unwrapped.state = np.array([0.0, 0.0])
    next_obs, reward, terminated, truncated = env.step(np.array([[1.0], [0.0]]))
    assert env.envs[0].unwrapped.last_u == pytest.approx(2.0)  # +1 -> the upper bound
    assert not terminated.any() and not truncated.any()
    for _ in range(4):
        next_obs, reward, terminated, truncated = env.step(np.zeros((2, 1)))
    assert truncated.all() and not terminated.any()  # the time limit, not a terminal state
    assert np.isfinite(env.last_return).all()
    assert not np.allclose(env.obs, next_obs)  # restarted: next actions use the new episode's obs
    inactive = env.step(np.zeros((2, 1)), active=np.array([True, False]))
    assert inactive[1][1] == 0.0 and not inactive[3][1]


def test_terminal_observation_is_stored_not_the_reset_one():
    env = native.VecEnv("Hopper-v5", 1)
    env.reset([0])
    rng = np.random.default_rng(0)
    for _ in range(1000):
        before = env.obs.copy()
        next_obs, _, terminated, _ = env.step(rng.uniform(-1, 1, (1, 3)))
        if terminated[0]:
            break
    assert terminated[0], "random actions should make the hopper fall"
    # the step returns the fallen state; the env has restarted near the initial pose
    assert not np.allclose(next_obs, env.obs, atol=1e-2) and not np.allclose(next_obs, before)
    assert abs(env.obs[0, 0] - 1.25) < 0.1 and np.abs(env.obs[0, 1:]).max() < 0.1  # height 1.25, at rest
    assert env.episode_return[0] == 0.0 and np.isfinite(env.last_return[0])


def _run(tmp_path, env, steps, **kw):
    config = dict(eval_every=1000, eval_episodes=3, buffer_size=20_000, checkpoint_every=1000)
    return runner.RunConfig(env=env, total_steps=steps, logdir=str(tmp_path / env), **{**config, **kw})


@pytest.mark.slow  # learning speed; learning is in the default suite through tests/test_training.py
def test_host_loop_learns_pendulum(tmp_path):
    # Measured: random policy -1200 to -1800; after 6000 steps -170 to -400 (seeds 0 and 1).
    agent = sac.SACConfig(critic="mlp", critic_overrides=dict(hidden_sizes=(64, 64)), actor_hidden_sizes=(64, 64))
    result = runner.run("sac", _run(tmp_path, "Pendulum-v1", 6000, num_seeds=2), agent, verbose=False)
    rows = logger.read_csv(os.path.join(result["logdir"], "metrics.csv"))
    assert float(rows[0]["return_mean"]) < -900
    assert max(float(r["return_mean"]) for r in rows[-2:]) > -550, [r["return_mean"] for r in rows]
    assert float(rows[-1]["critic_loss"]) > 0 and np.isfinite(float(rows[-1]["train_return"]))


def test_host_loop_compiles_its_step_once_per_seed_layout(caplog):
    from hyperjax.train import host_loop, loop

    agent = sac.make_agent(sac.SACConfig(critic="mlp", critic_overrides=dict(hidden_sizes=(16,))), 3, 1)
    for seeds in (1, 2):
        train_env, eval_env = native.VecEnv("Pendulum-v1", seeds), native.VecEnv("Pendulum-v1", seeds)
        config = loop.LoopConfig(32, 20, 33, 200, eval_episodes=1, episode_length=200, num_seeds=seeds)
        trainer = host_loop.make_trainer(agent, train_env, eval_env, config)
        state = trainer.init(jax.vmap(jax.random.key)(np.arange(seeds)))
        with compiles.counted(caplog) as count:
            for start in range(0, 100, 25):  # steps before and after the first update
                state, metrics = trainer.run_chunk(state, start, 25)
        assert count["learn_and_act_one"] == 1, count
        assert metrics["finite"].shape == (seeds,) and np.isfinite(metrics["critic_loss"]).all()


@pytest.mark.slow  # ~2 min; the CLI's resume is tested on the XLA path in tests/test_training.py
def test_ant_v5_through_the_cli_then_resume(tmp_path):
    logdir = str(tmp_path / "ant")
    common = [sys.executable, "-m", "hyperjax.experiments.td3", "--env=Ant-v5", "--critic=mlp", f"--logdir={logdir}"]
    small = ["--eval_every=200", "--checkpoint_every=200", "--eval_episodes=1", "--episode_length=100"]
    small += ["--start_steps=100", "--batch_size=32", "--buffer_size=1000", "--actor_hidden_sizes=32"]
    first = subprocess.run([*common, *small, "--total_steps=400"], capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "native MuJoCo via Gymnasium" in first.stderr
    resumed = subprocess.run([*common, *small, "--total_steps=600", "--resume"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    rows = logger.read_csv(os.path.join(logdir, "metrics.csv"))
    assert [int(r["step"]) for r in rows] == [0, 200, 400, 600]
    assert all(np.isfinite(float(r["return_mean"])) for r in rows)
    assert np.isfinite(float(rows[-1]["critic_loss"]))


@pytest.mark.slow  # ~4 min on 2 cores; the host loop's learning is tested on pendulum above
def test_sac_learns_hopper_v5_on_native_mujoco(tmp_path):
    # Measured: a random policy scores 9-17 (falls at once); SAC with the MLP critic reaches
    # 200-220 after 4000-8000 steps (seeds 1 and 2), and ~300 by 20k. Real physics, real learning.
    agent = sac.SACConfig(critic="mlp")
    run = _run(tmp_path, "Hopper-v5", 6000, num_seeds=2, seed=1, eval_every=3000, eval_episodes=5)
    result = runner.run("sac", run, agent, verbose=False)
    rows = logger.read_csv(os.path.join(result["logdir"], "metrics.csv"))
    assert float(rows[0]["return_mean"]) < 40
    assert max(float(r["return_mean"]) for r in rows[1:]) > 120, [r["return_mean"] for r in rows]


def test_host_loop_evaluation_policies_reach_gymnasium_unclipped():
    """An extra evaluation policy's actions go to Gymnasium as they are: MuJoCo clamps the controls
    (same motion) but the control cost is charged on the raw action (HalfCheetah: 0.1 * sum a^2), and
    both policies start from the same states, at every evaluation (``same_eval_starts``)."""
    from hyperjax.agents import base
    from hyperjax.train import host_loop, loop

    ones = lambda state, obs, key=None: np.ones(6, np.float32) + 0 * obs[:6]  # noqa: E731
    agent = base.Agent(
        init=lambda key: {},
        explore=ones,
        act=ones,
        update=lambda state, batch, key, step: (state, {}),
        eval_policies={"raw": lambda state, obs: 3.0 * ones(state, obs)},  # clamped to 1 by MuJoCo
    )
    train_env, eval_env = native.VecEnv("HalfCheetah-v5", 1, 10), native.VecEnv("HalfCheetah-v5", 2, 10)
    config = loop.LoopConfig(2, 0, 3, 10, eval_episodes=2, episode_length=10, same_eval_starts=True)
    trainer = host_loop.make_trainer(agent, train_env, eval_env, config)
    assert trainer.extra_returns == ("return_raw",)
    state = trainer.init(jax.random.key(0)[None])
    first, later = trainer.evaluate(state, 0), trainer.evaluate(state, 5000)
    assert first["return"].shape == (1, 2) and first["return"][0, 0] != first["return"][0, 1]
    np.testing.assert_allclose(first["return_raw"], first["return"] - 10 * 0.1 * 6 * (9 - 1), rtol=1e-6)
    np.testing.assert_array_equal(first["return"], later["return"])


def test_sac_cli_takes_the_paper_preset_of_its_env_and_logs_the_authors_evaluation(tmp_path):
    logdir = str(tmp_path / "cheetah")
    cmd = [sys.executable, "-m", "hyperjax.experiments.sac", "--env=HalfCheetah-v5", "--critic=mlp"]
    cmd += ["--total_steps=10", "--eval_every=10", "--checkpoint_every=10", "--eval_episodes=1", "--episode_length=10"]
    cmd += ["--batch_size=4", "--buffer_size=100", "--actor_hidden_sizes=8", '--critic_overrides={"hidden_sizes": [8]}']
    cmd += ["--alpha_lr=0.001", f"--logdir={logdir}"]  # an explicit flag beats the preset
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    with open(os.path.join(logdir, "config.json")) as f:
        agent = {k.removeprefix("agent."): v for k, v in json.load(f).items()}
    assert (agent["actor_lr"], agent["plain_critic_lr"], agent["start_steps"]) == (1e-4, 1e-4, 10_001)
    assert agent["alpha_lr"] == 0.001 and agent["sample_with_replacement"] is False and agent["same_eval_starts"]
    rows = logger.read_csv(os.path.join(logdir, "metrics.csv"))
    assert all(np.isfinite(float(r["return_pre_tanh_mean"])) for r in rows)
