"""Seeds sharded over devices and processes: 8 seeds on two processes of 2 (forced) CPU devices
each (``jax.distributed`` over loopback) give the per-seed results of one device, and a run
resumes on another device and process count, one process of 2 devices (orbax restores onto
whatever devices are there)."""

import os
import socket
import subprocess
import sys

import numpy as np
import pytest

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


def _two_processes(logdir, *extra) -> str:
    """The run on two local processes of two CPU devices each; process 0's stderr."""
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    cmd = [sys.executable, "-m", "hyperjax.experiments.td3", *FLAGS, f"--logdir={logdir}", *extra]
    cmd += ["--distributed", f"--coordinator_address=localhost:{port}", "--num_processes=2"]
    procs = [
        subprocess.Popen(
            [*cmd, f"--process_id={i}"], env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=900) for p in procs]
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-2000:]
    return outputs[0][1]


def _returns(logdir) -> np.ndarray:
    rows = logger.read_csv(os.path.join(logdir, "metrics.csv"))
    return np.array([[float(r[f"return_seed{s}"]) for s in range(SEEDS)] for r in rows])


def test_seeds_sharded_over_devices_and_processes_match_one_device_and_resume_on_other_counts(tmp_path):
    algorithm = algorithms.get("td3")
    agent = algorithm.make_config(critic="mlp", critic_overrides={"hidden_sizes": (32, 32)})
    agent.actor_hidden_sizes, agent.batch_size, agent.start_steps = (32, 32), 32, 50
    one = runner.RunConfig(
        env="pendulum", episode_length=50, num_seeds=SEEDS, total_steps=200, eval_every=100, eval_episodes=1,
        buffer_size=1000, checkpoint_every=100, logdir=str(tmp_path / "one"),
    )  # fmt: skip
    runner.run("td3", one, agent, verbose=False)  # this process has one CPU device

    header = _two_processes(tmp_path / "sharded", "--total_steps=100")
    assert "4 devices (cpu, 2 processes, 2 seed(s) each)" in header
    header = _cli(tmp_path / "sharded", 2, "--total_steps=200", "--resume")
    assert "2 devices (cpu, 4 seed(s) each)" in header

    expected, got = _returns(tmp_path / "one"), _returns(tmp_path / "sharded")
    # steps 0 and 100 (2 processes x 2 devices), 200 (resumed on one process of 2 devices)
    assert got.shape == expected.shape == (3, SEEDS)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-3)
    assert len(np.unique(expected[-1])) == SEEDS  # the seeds differ: the comparison is per seed


def test_seeds_that_do_not_split_over_the_processes_are_one_line_errors(monkeypatch):
    from hyperjax.train import trainer

    monkeypatch.setattr(trainer.jax, "process_count", lambda: 2)
    monkeypatch.setattr(trainer.jax, "local_device_count", lambda: 2)
    monkeypatch.setattr(trainer.jax, "device_count", lambda: 4)
    assert trainer.seed_devices(8) == 4 and trainer.seed_devices(2) == 2
    for seeds in (1, 3):
        with pytest.raises(ValueError, match=f"--num_seeds={seeds} does not split over 2 processes"):
            trainer.seed_devices(seeds)


MAML = dict(policy="vanilla", meta_batch=8, fast_batch=10, num_train_tasks=20, num_test_tasks=8, hidden_sizes=(32, 32))


@pytest.mark.slow  # a minute; the seeds' sharding over devices and processes runs by default above
def test_meta_learner_tasks_split_over_spare_devices_match_one_device(tmp_path):
    """MAML, 2 seeds on 4 devices: a seed per pair of devices, each device 4 of its 8 tasks (the
    meta-gradient's mean over tasks an all-reduce); returns after the first TRPO iteration as on one
    device, to float rounding (the all-reduce sums in another order). Later iterations are not
    compared: the rounding reaches the sampled episodes, and the line search's discrete choices then
    part (measured: the second iteration backtracked once in one layout and twice in the other, and the
    third's returns were 20% apart, both runs learning alike)."""
    run = dict(env="point_nav", num_seeds=2, total_steps=1, eval_every=1, eval_episodes=10, checkpoint_every=1)
    config = algorithms.get("maml").make_config(**MAML)
    runner.run("maml", runner.RunConfig(**run, logdir=str(tmp_path / "one")), config, verbose=False)

    flags = [f"--{k}={v}" for k, v in {**run, **MAML}.items() if k != "hidden_sizes"] + ["--hidden_sizes=32,32"]
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    cmd = [sys.executable, "-m", "hyperjax.experiments.maml", *flags, f"--logdir={tmp_path / 'split'}"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "4 devices (cpu, 1 seed(s) per 2 devices, 4 of its 8 tasks on each)" in proc.stderr

    def returns(logdir):
        rows = logger.read_csv(os.path.join(logdir, "metrics.csv"))
        return np.array([[float(r[f"return_seed{s}"]), float(r["return_pre_mean"])] for r in rows for s in range(2)])

    expected, got = returns(tmp_path / "one"), returns(tmp_path / "split")
    np.testing.assert_allclose(got[:2], expected[:2], rtol=1e-5)  # step 0: the same initial policy
    np.testing.assert_allclose(got, expected, rtol=2e-2)
