"""Runs one SAC/TD3 experiment: validates the config, trains, evaluates, logs, checkpoints.

Used by the entry points ``python -m hyperjax.experiments.sac`` / ``.td3`` (which turn absl
flags into the two config dataclasses) and directly by tests.
"""

import dataclasses
import json
import math
import os
import time

import jax
import numpy as np

from hyperjax.agents import sac, td3
from hyperjax.envs import native, registry
from hyperjax.nn import critics
from hyperjax.train import checkpoint, host_loop, logger, loop

ALGOS = {"sac": (sac.SACConfig, sac.make_agent), "td3": (td3.TD3Config, td3.make_agent)}
PROGRESS_EVERY = 1000  # env steps per compiled chunk at most
# config keys a resumed run may change
RESUMABLE = (
    "run.total_steps",
    "run.resume",
    "run.logdir",
    "run.checkpoint_every",
    "run.eval_every",
    "run.eval_episodes",
)


@dataclasses.dataclass
class RunConfig:
    """The experiment around the agent. Defaults: the paper's (1M steps, eval every 5000)."""

    env: str = "ant"
    backend: str = registry.DEFAULT_BACKEND
    env_preset: str = "paper"  # 'paper': the authors' reward terms (Ant: no control cost)
    episode_length: int | None = None  # None: 1000 (MuJoCo tasks), 200 (pendulum)
    seed: int = 0
    num_seeds: int = 1  # seeds trained together in one program: seed, seed+1, ...
    total_steps: int = 1_000_000
    eval_every: int = 5000
    eval_episodes: int = 10
    buffer_size: int = 1_000_000
    logdir: str | None = None  # None: runs/{algo}_{env}_{critic}_seed{seed}
    checkpoint_every: int = 50_000
    resume: bool = False


class TrainingDiverged(RuntimeError):
    """A NaN/inf loss or parameter appeared."""


def update_after(algo: str, agent_config) -> int:
    """Transitions in the buffer before the first update (PAPER_FACTS 3.1/3.2)."""
    if algo == "sac":  # the authors' SAC updates once the buffer holds more than a batch
        return agent_config.batch_size + 1
    return agent_config.start_steps + 1  # TD3 trains from t >= start_steps


def validate(algo: str, run: RunConfig, agent_config) -> None:
    """Raises ValueError with a one-line message for any bad setting (before anything runs)."""
    if algo not in ALGOS:
        raise ValueError(f"unknown algorithm {algo!r}; valid: {', '.join(ALGOS)}")
    registry.check_names(run.env, run.backend, run.env_preset)
    critics.check_name(agent_config.critic)
    positive = dict(
        num_seeds=run.num_seeds,
        total_steps=run.total_steps,
        eval_every=run.eval_every,
        eval_episodes=run.eval_episodes,
        buffer_size=run.buffer_size,
        checkpoint_every=run.checkpoint_every,
        batch_size=agent_config.batch_size,
    )
    if run.episode_length is not None:
        positive["episode_length"] = run.episode_length
    for name, value in positive.items():
        if value < 1:
            raise ValueError(f"--{name} must be a positive integer, got {value}")
    if agent_config.start_steps < 0:
        raise ValueError(f"--start_steps must be >= 0, got {agent_config.start_steps}")
    first = update_after(algo, agent_config)
    if agent_config.batch_size > min(first, run.buffer_size):
        raise ValueError(
            f"--batch_size={agent_config.batch_size} is larger than the buffer holds at the first update "
            f"({min(first, run.buffer_size)} transitions); lower --batch_size or raise --start_steps/--buffer_size"
        )
    if run.total_steps % run.eval_every:
        raise ValueError(f"--total_steps={run.total_steps} must be a multiple of --eval_every={run.eval_every}")


def config_dict(algo: str, run: RunConfig, agent_config) -> dict:
    """The resolved config, flat and JSON-clean (what config.json and checkpoints hold)."""
    flat = {"algo": algo}
    flat.update({f"run.{k}": v for k, v in dataclasses.asdict(run).items()})
    flat.update({f"agent.{k}": v for k, v in dataclasses.asdict(agent_config).items()})
    return json.loads(json.dumps(flat))


def default_logdir(algo: str, run: RunConfig, agent_config) -> str:
    return os.path.join("runs", f"{algo}_{run.env}_{agent_config.critic}_seed{run.seed}")


def _mean(values) -> float:
    """Mean over seeds of the finite entries ('' when none: e.g. no update in the chunk yet)."""
    values = np.asarray(values)[np.isfinite(values)]
    return float(values.mean()) if values.size else ""


def run(algo: str, run_config: RunConfig, agent_config, verbose: bool = True) -> dict:
    """Trains, and returns ``{'step', 'returns' [S], 'logdir'}`` at the end.

    Raises:
      ValueError: bad settings. checkpoint.CheckpointError: bad ``resume``.
      TrainingDiverged: NaN/inf; the last good checkpoint is kept.
    """
    validate(algo, run_config, agent_config)
    logdir = run_config.logdir or default_logdir(algo, run_config, agent_config)
    ckpt_dir = os.path.join(logdir, "checkpoints")
    if not run_config.resume and os.path.isdir(ckpt_dir) and os.listdir(ckpt_dir):
        raise ValueError(f"{logdir} already holds a run; pass --resume to continue it, or choose another --logdir")
    os.makedirs(logdir, exist_ok=True)

    chunk = math.gcd(run_config.eval_every, run_config.checkpoint_every, PROGRESS_EVERY)
    episode_length = run_config.episode_length or registry.default_episode_length(run_config.env)
    loop_config = loop.LoopConfig(
        batch_size=agent_config.batch_size,
        start_steps=agent_config.start_steps,
        update_after=update_after(algo, agent_config),
        buffer_size=run_config.buffer_size,
        chunk_steps=chunk,
        eval_episodes=run_config.eval_episodes,
        episode_length=episode_length,
    )
    make_agent = ALGOS[algo][1]
    if registry.is_native(run_config.env):  # MuJoCo's C engine on the host, one jitted call per step
        seeds, name, preset = run_config.num_seeds, run_config.env, run_config.env_preset
        train_env = native.VecEnv(name, seeds, run_config.episode_length, preset)
        eval_env = native.VecEnv(name, seeds * run_config.eval_episodes, run_config.episode_length, preset)
        loop_config = dataclasses.replace(loop_config, episode_length=train_env.episode_length)  # Gymnasium's limit
        agent = make_agent(agent_config, train_env.observation_size, train_env.action_size)
        trainer = host_loop.make_trainer(agent, train_env, eval_env, loop_config)
    else:  # everything in XLA programs
        env = registry.make(
            run_config.env,
            backend=run_config.backend,
            episode_length=run_config.episode_length,
            preset=run_config.env_preset,
        )
        agent = make_agent(agent_config, env.observation_size, env.action_size)
        trainer = loop.make_trainer(agent, env, loop_config)
    keys = jax.vmap(jax.random.key)(run_config.seed + np.arange(run_config.num_seeds))
    config = config_dict(algo, run_config, agent_config)
    mngr = checkpoint.manager(ckpt_dir)

    step = 0
    if run_config.resume:
        state, step = checkpoint.restore_latest(mngr, jax.eval_shape(trainer.init, keys), config, ignore=RESUMABLE)
    else:
        state = trainer.init(keys)
    with open(os.path.join(logdir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)

    seeds = run_config.num_seeds
    metric_names = ["critic_loss", "actor_loss", "q", "alpha", "entropy"]
    columns = ["step", *[f"return_seed{s}" for s in range(seeds)], "return_mean", "train_return_mean"]
    columns += metric_names + ["steps_per_sec", "wall_s"]
    csv_path = os.path.join(logdir, "metrics.csv")
    csv_log = logger.CsvLog(csv_path, columns, resume_step=step if run_config.resume else None)
    title = f"{algo.upper()} {run_config.env} ({agent_config.critic})"
    progress = logger.Progress(run_config.total_steps, step) if verbose else None
    t_start, last_ckpt = time.perf_counter(), step if run_config.resume else None

    def log_eval(step, metrics, rate):
        returns = np.asarray(trainer.evaluate(state, step)).mean(axis=1)  # [S]
        row = {"step": step, "return_mean": float(returns.mean()), "steps_per_sec": rate}
        row.update({f"return_seed{s}": float(r) for s, r in enumerate(returns)})
        row.update({k: _mean(v) for k, v in metrics.items() if k in metric_names})
        if "train_return" in metrics:
            row["train_return_mean"] = _mean(metrics["train_return"])
        row["wall_s"] = round(time.perf_counter() - t_start, 1)
        csv_log.write(row)
        logger.plot_curves(csv_path, os.path.join(logdir, "curve.png"), title, seeds)
        return returns

    returns = log_eval(step, {}, None) if step == 0 else None
    rate = None
    while step < run_config.total_steps:
        t0 = time.perf_counter()
        state, metrics = trainer.run_chunk(state, step)
        metrics = jax.device_get(metrics)
        elapsed = time.perf_counter() - t0
        if not np.all(metrics["finite"]):
            bad = [int(s) for s in np.flatnonzero(~np.asarray(metrics["finite"]))]
            kept = f"the last good checkpoint (step {last_ckpt}) is kept" if last_ckpt is not None else "no checkpoint"
            raise TrainingDiverged(
                f"NaN/inf loss or parameters in seed(s) {bad} between steps {step} and {step + chunk}; stopped, "
                f"{kept} in {ckpt_dir}. Try a lower --critic_lr/--actor_lr or --reward_scale"
            )
        step += chunk
        # the first chunk includes compilation; later rates are steady-state
        rate = chunk / elapsed if rate is None else 0.7 * rate + 0.3 * chunk / elapsed
        if step % run_config.eval_every == 0:
            returns = log_eval(step, metrics, rate)
        if step % run_config.checkpoint_every == 0 or step == run_config.total_steps:
            checkpoint.save(mngr, step, state, config)
            last_ckpt = step
        if progress:
            msg = f"return {np.mean(returns):.1f}" if returns is not None else ""
            progress.update(step, msg, rate)
    if returns is None:
        returns = np.asarray(trainer.evaluate(state, step)).mean(axis=1)
    return {"step": step, "returns": np.asarray(returns), "logdir": logdir, "state": state}
