"""Seeds sharded over devices: 8 seeds on 4 (forced) CPU devices give the per-seed results of one
device, and a run resumes on another device count (checkpoints hold whole arrays)."""

import os
import subprocess
import sys

import numpy as np

from hyperjax.agents import registry as algorithms
from hyperjax.experiments import runner
from hyperjax.train import logger

SEEDS = 8
FLAGS = [
    "--env=pendulum",
    "--episode_length=50",
    "--critic=mlp",
    '--critic_overrides={"hidden_sizes": [32, 32]}',
    "--actor_hidden_sizes=32,32",
    "--batch_size=32",
    "--start_steps=50",
    f"--num_seeds={SEEDS}",
    "--eval_every=100",
    "--eval_episodes=1",
    "--buffer_size=1000",
    "--checkpoint_every=100",
]


def _cli(logdir, devices: int, *extra) -> str:
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    cmd = [sys.executable, "-m", "hyperjax.experiments.td3", *FLAGS, f"--logdir={logdir}", *extra]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stderr


def _returns(logdir) -> np.ndarray:
    rows = logger.read_csv(os.path.join(logdir, "metrics.csv"))
    return np.array([[float(r[f"return_seed{s}"]) for s in range(SEEDS)] for r in rows])


def test_seeds_sharded_over_devices_match_one_device_and_resume_on_another_count(tmp_path):
    algorithm = algorithms.get("td3")
    agent = algorithm.make_config(critic="mlp", critic_overrides={"hidden_sizes": (32, 32)})
    agent.actor_hidden_sizes, agent.batch_size, agent.start_steps = (32, 32), 32, 50
    one = runner.RunConfig(
        env="pendulum", episode_length=50, num_seeds=SEEDS, total_steps=200, eval_every=100, eval_episodes=1,
        buffer_size=1000, checkpoint_every=100, logdir=str(tmp_path / "one"),
    )  # fmt: skip
    runner.run("td3", one, agent, verbose=False)  # this process has one CPU device

    header = _cli(tmp_path / "sharded", 4, "--total_steps=100")
    assert "4 devices (cpu, 2 seed(s) each)" in header
    header = _cli(tmp_path / "sharded", 2, "--total_steps=200", "--resume")
    assert "2 devices (cpu, 4 seed(s) each)" in header

    expected, got = _returns(tmp_path / "one"), _returns(tmp_path / "sharded")
    assert got.shape == expected.shape == (3, SEEDS)  # steps 0, 100 (4 devices) and 200 (2 devices)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-3)
    assert len(np.unique(expected[-1])) == SEEDS  # the seeds differ: the comparison is per seed
