"""Runs one experiment of any registered algorithm: validates, trains, evaluates, logs, checkpoints.

Used by the entry points (``python -m hyperjax.experiments.sac`` ..., which turn absl flags into
``RunConfig`` and the algorithm's config) and directly by tests. The runner knows algorithms only
through their registry entry (``agents.base.Algorithm``) and trainers only through
``train.trainer.Trainer``: it logs whatever metrics a trainer reports. With ``--video_every`` it also
films the deterministic policy of the first seed at evaluation steps (``train.video.record`` of
``Trainer.snapshot``).
"""

import contextlib
import dataclasses
import json
import os
import signal
import sys
import threading
import time

import jax
import numpy as np

from hyperjax import config as cfg
from hyperjax.agents import registry as algorithms
from hyperjax.envs import registry
from hyperjax.experiments import rundir
from hyperjax.train import checkpoint, distributed, logger, video
from hyperjax.train import trainer as trainer_lib

CALL_SECONDS = 4.0  # each training call is sized to about this long: progress and Ctrl-C within seconds
MAX_CALL_STEPS = 10_000
# config keys a resumed run may change
RESUMABLE = (
    "run.total_steps",
    "run.checkpoint_minutes",
    "run.resume",
    "run.logdir",
    "run.checkpoint_every",
    "run.eval_every",
    "run.eval_episodes",
    "run.snapshot_every",
    "run.video_every",
)
SNAPSHOTS = "snapshots"  # the folder of a run's parameter snapshots (checkpoint.save / restore)
VIDEOS = "videos"  # the folder of its videos (--video_every: training_step_<N>.mp4; the render CLI: step_<N>.mp4)
# --video_every's clips: one episode, small frames (rendering costs seconds per clip on a CPU)
VIDEO_EPISODES, VIDEO_WIDTH, VIDEO_HEIGHT = 1, 320, 240


@dataclasses.dataclass
class RunConfig:
    """The experiment around the agent. Defaults: the paper's (1M steps, eval every 5000)."""

    env: str = cfg.field("ant", "Environment: pure JAX, Brax/MJX, or native Gymnasium MuJoCo.", valid=registry.ENVS)
    backend: str = cfg.field(registry.DEFAULT_BACKEND, "Brax physics backend.", valid=registry.BACKENDS)
    env_preset: str = cfg.field(
        "paper",
        "'paper': the authors' rewards and observations (Ant: contact forces, no control cost).",
        valid=registry.PRESETS,
    )
    physics: str | None = cfg.field(
        None,
        "Model files: 'gym' (Gym's, loaded onto MJX with Gym v2 resets and terminations: what the authors' "
        "envs stepped) or 'brax' (Brax's: lighter contacts and solver, faster). Unset: the env preset's "
        "('paper': gym for hopper, walker2d, halfcheetah, ant and the MuJoCo meta tasks; 'brax': brax).",
        valid=registry.PHYSICS,
    )
    contact_forces: str | None = cfg.field(
        None,
        "Ant tasks' contact forces (observation and contact cost): 'zero' (what mujoco-py 2.x reported to the "
        "authors) or 'mujoco' (MuJoCo's cfrc_ext). Unset: physics gym: zero; brax: mujoco.",
        valid=registry.CONTACT_FORCES,
    )
    episode_length: int | None = cfg.field(
        None, "Time limit in env steps; unset: 1000 (MuJoCo tasks), 200 (pendulum).", valid=cfg.POSITIVE_INT
    )
    seed: int = cfg.field(0, "First seed; several seeds are seed, seed+1, ...", valid=cfg.NON_NEGATIVE)
    num_seeds: int = cfg.field(1, "Seeds trained together in one program.", valid=cfg.POSITIVE_INT)
    total_steps: int = cfg.field(
        1_000_000, "Training steps per seed: env steps (SAC/TD3, paper 1M) or MAML iterations.", valid=cfg.POSITIVE_INT
    )
    eval_every: int = cfg.field(5000, "Training steps between evaluations (paper: 5000).", valid=cfg.POSITIVE_INT)
    eval_episodes: int = cfg.field(
        10, "Episodes per evaluation (paper: 10 deterministic; MAML: per test task, 20).", valid=cfg.POSITIVE_INT
    )
    buffer_size: int = cfg.field(1_000_000, "Replay capacity in transitions (paper: 1M).", valid=cfg.POSITIVE_INT)
    logdir: str | None = cfg.field(None, "Output folder; unset: runs/{algo}_{env}_{critic}_seed{seed}.")
    checkpoint_every: int = cfg.field(50_000, "Training steps between checkpoints.", valid=cfg.POSITIVE_INT)
    checkpoint_minutes: float = cfg.field(
        20.0, "Also checkpoint when this many minutes passed since the last one; 0: off.", valid=cfg.NON_NEGATIVE
    )
    resume: bool = cfg.field(False, "Continue the run in --logdir from its latest checkpoint.")
    snapshot_every: int = cfg.field(
        0,
        "Training steps between parameter snapshots (actor and critics, no replay) for the gradient "
        "analysis (paper: 10000); 0: none.",
        valid=cfg.NON_NEGATIVE,
    )
    video_every: int = cfg.field(
        0,
        "Training steps between short videos of the first seed's deterministic policy (one episode, "
        f"{VIDEO_WIDTH}x{VIDEO_HEIGHT}) in <logdir>/{VIDEOS}/training_step_<N>.mp4, at step 0 and at these "
        "evaluations; "
        "in TensorBoard too where moviepy is installed (tensorboardX needs it; not a dependency). A multiple "
        "of --eval_every; 0: none (rendering is slow on a CPU: about a minute per 1000-step MuJoCo episode, 2 cores).",
        valid=cfg.NON_NEGATIVE,
    )


class TrainingDiverged(RuntimeError):
    """A NaN/inf loss or parameter appeared."""


class Interrupted(RuntimeError):
    """Ctrl-C or SIGTERM: the run saved a checkpoint at ``step`` and stopped."""

    def __init__(self, step: int, signal_name: str):
        super().__init__(f"{signal_name}: interrupted at step {step:,}; continue with --resume")
        self.step = step


class StopRequests:
    """Ctrl-C / SIGTERM while a run builds, compiles and makes its first training call end the
    process at once (the signals' default action: nothing is trained yet, and a Python handler
    could not run before a compilation returns). From ``graceful()`` on, the first one asks the run
    to stop at the next call boundary (it then checkpoints); a second Ctrl-C raises
    KeyboardInterrupt at once."""

    def __init__(self):
        self.signal_name: str | None = None
        self._previous = {}

    def graceful(self) -> None:
        for sig in self._previous:
            signal.signal(sig, self._handle)

    def _handle(self, signum, frame):
        del frame
        self.signal_name = signal.Signals(signum).name
        signal.signal(signal.SIGINT, signal.default_int_handler)  # the second Ctrl-C is immediate

    def _record(self, signum, frame):
        del frame
        self.signal_name = self.signal_name or signal.Signals(signum).name

    @contextlib.contextmanager
    def shielded(self):
        """Signals during a checkpoint's write wait for it to finish: they are recorded (the run then
        stops, saved), never raised inside orbax's writers."""
        handlers = {sig: signal.signal(sig, self._record) for sig in self._previous}
        try:
            yield
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, signal.SIG_DFL)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def legacy_run(run: RunConfig) -> dict:
    """How a run begun before ``--physics`` existed stepped its env (Brax's models, MuJoCo's contact
    forces), as the values a saved config without those keys is compared as: this command's own where
    it runs the same physics, so only a run that would now change models is refused (naming the flag)."""
    if registry.resolve_physics(run.env, run.env_preset, run.physics) == "brax":
        return {"run.physics": run.physics, "run.contact_forces": run.contact_forces}
    return {"run.physics": "brax", "run.contact_forces": "mujoco"}


def env_spec(run: RunConfig) -> registry.EnvSpec:
    return registry.EnvSpec(
        run.env, run.backend, run.env_preset, run.episode_length, run.physics, run.contact_forces
    )


def env_sizes(spec: registry.EnvSpec) -> tuple[int, int]:
    """``(observation_size, action_size)`` of an env (to build an agent: ``Algorithm.make_agent``)."""
    if spec.on_host:
        env = spec.make_host(1)
        env.close()
        return env.observation_size, env.action_size
    env = spec.make()
    return env.observation_size, env.action_size


def setting(run: RunConfig) -> trainer_lib.Setting:
    """What this run asks of the algorithm's trainer."""
    return trainer_lib.Setting(
        env=env_spec(run),
        num_seeds=run.num_seeds,
        eval_episodes=run.eval_episodes,
        buffer_size=run.buffer_size,
    )


def _check_logdir(logdir: str | None) -> None:
    """The folder must be creatable or a writable directory (checked before anything is written)."""
    if logdir is None:
        return
    if os.path.exists(logdir) and not os.path.isdir(logdir):
        raise ValueError(f"--logdir={logdir} is a file; give a folder (new or holding a run)")
    parent = os.path.abspath(logdir)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise ValueError(f"--logdir={logdir} cannot be created: {parent} is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"--logdir={logdir} cannot be written: no permission in {parent}")


_TRAINERS: dict = {}  # the last trainer validate built, reused by _train (built once per run)


def _trainer(algo: str, run: RunConfig, agent_config) -> trainer_lib.Trainer:
    """``Algorithm.make_trainer`` for the run, built once for validation and training."""
    key = (algo, repr(agent_config), repr(setting(run)))
    if key not in _TRAINERS:
        _TRAINERS.clear()
        _TRAINERS[key] = algorithms.get(algo).make_trainer(agent_config, setting(run))
    return _TRAINERS[key]


def _size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000


def device_memory() -> tuple[int, str]:
    """``(bytes, what)``: the memory one seed-holding device offers (an accelerator's limit; on CPU the
    host's RAM, shared by its CPU devices)."""
    device = jax.local_devices()[0]
    stats = device.memory_stats() if device.platform != "cpu" else None
    if stats and stats.get("bytes_limit"):
        return int(stats["bytes_limit"]), f"one {device.device_kind}"
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return ram // jax.local_device_count(), "this host's RAM" + (
        f" (a {jax.local_device_count()}th per CPU device)" if jax.local_device_count() > 1 else ""
    )


def _check_memory(algo: str, run: RunConfig, agent_config) -> None:
    """ValueError (one line) if the training state alone cannot fit the devices: its bytes from
    ``jax.eval_shape`` of the trainer's init (nothing allocated or compiled), seeds sharded equally."""
    trainer = _trainer(algo, run, agent_config)
    seeds = jax.ShapeDtypeStruct((run.num_seeds,), np.uint32)
    shapes = jax.eval_shape(lambda s: trainer.init(jax.vmap(jax.random.key)(s)), seeds)
    total = sum(x.size * np.dtype(x.dtype).itemsize for x in jax.tree.leaves(shapes))
    devices = trainer_lib.seed_devices(run.num_seeds)
    available, where = device_memory()
    if total / devices <= available:
        return
    per_seed = total / run.num_seeds
    fit = int(available * devices // per_seed)
    if fit < 1:
        raise ValueError(
            f"one seed's training state needs {_size(per_seed)} (--buffer_size={run.buffer_size}), more than "
            f"{_size(available)} of {where}; give a smaller --buffer_size or network"
        )
    offered = f"{_size(available)} of {where}" if devices == 1 else f"{devices} x {_size(available)} ({where} each)"
    raise ValueError(
        f"--num_seeds={run.num_seeds}: the training state needs {_size(total)} ({_size(per_seed)} per seed), "
        f"more than the {offered}; at most {fit} seeds fit"
    )


def validate(algo: str, run: RunConfig, agent_config) -> None:
    """Raises ValueError with a one-line message for any bad setting (before anything runs)."""
    algorithm = algorithms.get(algo)
    env_spec(run).check()
    cfg.check(run)
    cfg.check(agent_config)
    _check_logdir(run.logdir)
    if run.total_steps % run.eval_every:
        raise ValueError(f"--total_steps={run.total_steps} must be a multiple of --eval_every={run.eval_every}")
    trainer_lib.seed_devices(run.num_seeds)  # the seeds split over the processes
    if distributed.multi_process() and env_spec(run).on_host:
        raise ValueError(f"--env={run.env} steps native physics on one host; several processes need an MJX/Brax env")
    has_snapshots = algorithm.make_agent is not None and not env_spec(run).on_host  # Trainer.snapshot
    if run.snapshot_every and not has_snapshots:
        raise ValueError(
            f"--snapshot_every: {algo} on {run.env} keeps no snapshots (off-policy agents on JAX envs do); "
            "leave it at 0"
        )
    if run.video_every and not has_snapshots:  # the videos film Trainer.snapshot's policy
        filmed = ", ".join(name for name, a in algorithms.ALGORITHMS.items() if a.make_agent is not None)
        later = ""
        if algorithm.make_agent is not None:  # a native env: its checkpoints hold the agent
            later = " and film its checkpoints afterwards: python -m hyperjax.experiments.render --run=<logdir>"
        raise ValueError(
            f"--video_every: {algo} on {run.env} cannot film during training ({filmed} on JAX/Brax envs can); "
            f"leave it at 0{later}"
        )
    if run.video_every % run.eval_every:
        raise ValueError(
            f"--video_every={run.video_every} must be a multiple of --eval_every={run.eval_every} "
            "(videos are made at evaluations)"
        )
    algorithm.check(agent_config, setting(run))
    multiple = algorithm.step_multiple(agent_config)
    for name in ("total_steps", "eval_every", "checkpoint_every", "snapshot_every"):
        if getattr(run, name) % multiple:
            raise ValueError(
                f"--{name}={getattr(run, name)} must be a multiple of {multiple}, the env steps one training "
                "iteration takes (--num_envs)"
            )
    _check_memory(algo, run, agent_config)  # last: it builds the trainer


def config_dict(algo: str, run: RunConfig, agent_config) -> dict:
    """The resolved config, flat and JSON-clean (what config.json and checkpoints hold)."""
    flat = {"algo": algo}
    flat.update({f"run.{k}": v for k, v in dataclasses.asdict(run).items()})
    flat.update({f"agent.{k}": v for k, v in dataclasses.asdict(agent_config).items()})
    return json.loads(json.dumps(flat))


def load_config(logdir: str) -> tuple[str, RunConfig, object]:
    """``(algo, run_config, agent_config)`` of the run in ``logdir`` (from its ``config.json``).

    Raises ValueError (one line) if there is no run there."""
    path = os.path.join(logdir, "config.json")
    if not os.path.isfile(path):
        raise ValueError(f"{logdir} holds no run (no config.json); give a folder a training run wrote")
    with open(path) as f:
        flat = json.load(f)
    algorithm = algorithms.get(flat["algo"])

    def fields(cls, prefix):
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k[len(prefix) :]: v for k, v in flat.items() if k.startswith(prefix) and k[len(prefix) :] in names}
        return cls(**{k: cfg.as_tuples(v) for k, v in values.items()})

    return flat["algo"], fields(RunConfig, "run."), fields(algorithm.config, "agent.")


def default_logdir(algo: str, run: RunConfig, agent_config) -> str:
    name = algorithms.get(algo).run_name(agent_config)
    return os.path.join("runs", f"{algo}_{run.env}_{name}_seed{run.seed}")


class _Means:
    """Step-weighted means per seed of the metrics of several training calls (NaNs skipped)."""

    def __init__(self):
        self.sums, self.weights = {}, {}

    def add(self, metrics: dict, steps: int) -> None:
        for k, v in metrics.items():
            v = np.asarray(v, np.float64)
            ok = np.isfinite(v)
            self.sums[k] = self.sums.get(k, 0.0) + np.where(ok, v * steps, 0.0)
            self.weights[k] = self.weights.get(k, 0.0) + ok * steps

    def result(self) -> dict:
        with np.errstate(invalid="ignore", divide="ignore"):
            return {k: self.sums[k] / self.weights[k] for k in self.sums}


def evaluate(trainer: trainer_lib.Trainer, state, step: int) -> dict:
    """``{'return': [S], **extra_returns}``: the trainer's evaluation, averaged per seed."""
    evaluation = trainer.evaluate(state, step)
    if not isinstance(evaluation, dict):
        evaluation = {"return": evaluation}
    return {k: distributed.to_host(v).mean(axis=1) for k, v in evaluation.items()}


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
    primary = distributed.is_primary()  # with several processes, process 0 alone logs and prints
    logdir = run_config.logdir or default_logdir(algo, run_config, agent_config)
    if run_config.resume and not os.path.isdir(logdir):  # refused before anything is created
        rundir.decide(logdir, algo, run_config.resume, run_config.total_steps)
    os.makedirs(logdir, exist_ok=True)
    lock = rundir.Lock(logdir) if primary else None  # one process per run folder
    try:
        resume, stale = rundir.decide(logdir, algo, run_config.resume, run_config.total_steps)
        (resume,) = distributed.agree((resume,))  # process 0 decides (it alone moves files)
        if stale and primary:
            print(rundir.move_aside(logdir, stale, run_config.resume), file=sys.stderr)
        run_config = dataclasses.replace(run_config, resume=resume)
        return _train(algo, run_config, agent_config, logdir, verbose and primary, primary)
    finally:
        if lock:
            lock.release()


def _train(algo: str, run_config: RunConfig, agent_config, logdir: str, verbose: bool, primary: bool) -> dict:
    """``run`` once its folder is held and its start decided (``rundir.decide``)."""
    ckpt_dir = os.path.join(logdir, rundir.CHECKPOINTS)

    algorithm = algorithms.get(algo)
    with StopRequests() as stop:  # until the first training call returns: signals end the run at once
        t_build = time.perf_counter()
        if verbose:
            print(
                "compiling: init, evaluation and the training program (the first training call); "
                "Ctrl-C now stops at once, nothing is trained yet...",
                file=sys.stderr,
            )
        trainer = _trainer(algo, run_config, agent_config)  # validate built it
        keys = jax.vmap(jax.random.key)(run_config.seed + np.arange(run_config.num_seeds))
        config = config_dict(algo, run_config, agent_config)
        mngr = checkpoint.manager(ckpt_dir)
        snapshots = checkpoint.manager(os.path.join(logdir, SNAPSHOTS), max_to_keep=None)

        def snapshot(step: int) -> None:
            if run_config.snapshot_every and step % run_config.snapshot_every == 0:
                if step not in snapshots.all_steps():  # a resumed run reaches it again, bit-exactly
                    with stop.shielded():
                        checkpoint.save(snapshots, step, trainer.snapshot(state), config)

        if run_config.video_every:  # built once: video.record compiles its rollout once per agent
            spec = env_spec(run_config)
            agent = algorithm.make_agent(agent_config, *env_sizes(spec))

        step = 0
        if run_config.resume:
            abstract = jax.eval_shape(trainer.init, keys)
            # a setting the saved config lacks was added since the run began: it ran as that setting's
            # value of before (LEGACY_RUN, Algorithm.legacy_defaults), else its default
            defaults = {
                **config_dict(algo, RunConfig(), algorithm.config()),
                **legacy_run(run_config),
                **{f"agent.{k}": v for k, v in algorithm.legacy_defaults.items()},
            }
            state, step = checkpoint.restore_latest(mngr, abstract, config, ignore=RESUMABLE, defaults=defaults)
        else:
            state = trainer.init(keys)
        if primary:
            with open(os.path.join(logdir, "config.json"), "w") as f:
                json.dump(config, f, indent=2)

        seeds = run_config.num_seeds
        columns = ["step", *[f"return_seed{s}" for s in range(seeds)], "return_mean"]
        columns += [f"{name}_mean" for name in trainer.extra_returns]
        columns += [*trainer.metric_names, "steps_per_sec", "wall_s"]  # metrics: means over seeds
        csv_path = os.path.join(logdir, "metrics.csv")
        csv_log = logger.CsvLog(csv_path, columns, resume_step=step if run_config.resume else None) if primary else None
        board = logger.TensorBoard(logdir, resume_step=step if run_config.resume else None) if primary else None
        title = f"{algo.upper()} {run_config.env} ({algorithm.run_name(agent_config)})"
        progress = logger.Progress(run_config.total_steps, step, unit=algorithm.step_name) if verbose else None
        t_start, last_ckpt = time.perf_counter(), step if run_config.resume else None

        def log_eval(step, metrics, rate):
            evaluation = evaluate(trainer, state, step)
            returns = evaluation["return"]  # [S]
            row = {"step": step, "return_mean": float(returns.mean()), "steps_per_sec": rate}
            row.update({f"return_seed{s}": float(r) for s, r in enumerate(returns)})
            row.update({f"{name}_mean": float(evaluation[name].mean()) for name in trainer.extra_returns})
            row.update({k: _mean(metrics[k]) for k in trainer.metric_names if k in metrics})
            row["wall_s"] = round(time.perf_counter() - t_start, 1)
            if primary:
                csv_log.write(row)
                board.write(step, row)
                png = os.path.join(logdir, "curve.png")
                logger.plot_curves(csv_path, png, title, seeds, trainer.extra_returns, algorithm.step_name)
            return returns

        def film(step: int) -> None:
            """At an evaluation step: a video of the first seed's deterministic policy (process 0)."""
            if not run_config.video_every or step % run_config.video_every:
                return
            params = distributed.to_host(trainer.snapshot(state))  # [S, ...]; with several processes all gather
            if not primary:
                return
            path = os.path.join(logdir, VIDEOS, f"training_step_{step}.mp4")
            clip = video.record(
                spec, agent, jax.tree.map(lambda x: x[0], params), jax.random.key(run_config.seed), path,
                VIDEO_EPISODES, VIDEO_WIDTH, VIDEO_HEIGHT,
            )  # fmt: skip
            board.video(step, path, clip.fps)
            if verbose:
                took = clip.rollout_seconds + clip.render_seconds
                erase = "\r\033[K" if progress.tty and step > progress.start else ""  # the progress bar's line
                name = os.path.relpath(path, logdir)
                print(f"{erase}video: {name} (return {clip.returns[0]:.1f}, {took:.1f} s to render)", file=sys.stderr)

        returns = None
        if step == 0:
            returns = log_eval(step, {}, None)
            film(step)
        snapshot(step)
        since_eval = _Means()
        multiple = trainer.step_multiple  # calls (and so every step the runner stops at) come in multiples of it
        first_call = -(-algorithm.first_call_steps // multiple) * multiple
        # a call ends where the work per step changes (the first gradient step), and the call after it
        # is a short probe, so no call is sized from steps that cost a fraction of its own
        first_update = algorithm.first_update(agent_config)
        rate, num_steps, last_save_time, compiled = None, first_call, time.perf_counter(), False
        with contextlib.closing(board) if primary else contextlib.nullcontext():
            while step < run_config.total_steps:
                next_eval = (step // run_config.eval_every + 1) * run_config.eval_every
                next_ckpt = (step // run_config.checkpoint_every + 1) * run_config.checkpoint_every
                bounds = [next_eval - step, next_ckpt - step, run_config.total_steps - step]
                if run_config.snapshot_every:
                    bounds.append(run_config.snapshot_every - step % run_config.snapshot_every)
                if step < first_update:
                    bounds.append(first_update - step)
                num_steps = max(multiple, min(num_steps, *bounds) // multiple * multiple)
                t0 = time.perf_counter()
                state, metrics = trainer.run_chunk(state, step, num_steps)
                metrics = distributed.to_host(metrics)
                elapsed = time.perf_counter() - t0
                if not np.all(metrics["finite"]):
                    bad = [int(s) for s in np.flatnonzero(~np.asarray(metrics["finite"]))]
                    kept = "no checkpoint"
                    if last_ckpt is not None:
                        kept = f"the last good checkpoint (step {last_ckpt}) is kept"
                    raise TrainingDiverged(
                        f"NaN/inf loss or parameters in seed(s) {bad} between steps {step} and {step + num_steps}; "
                        f"stopped, {kept} in {ckpt_dir}. Try lower learning rates or --reward_scale"
                    )
                phase_change = step < first_update <= step + num_steps
                step += num_steps
                since_eval.add(metrics, num_steps)
                if not compiled:  # the first call's time is mostly compilation: no speed from it
                    compiled = True
                    stop.graceful()
                    if verbose:
                        took = time.perf_counter() - t_build
                        print(f"compiled in {took:.1f} s (with the first {num_steps} training steps)", file=sys.stderr)
                else:
                    call_rate = num_steps / elapsed
                    rate = call_rate if rate is None else 0.7 * rate + 0.3 * call_rate
                    num_steps = int(min(MAX_CALL_STEPS, 10 * num_steps, max(1, call_rate * CALL_SECONDS)))
                if phase_change:
                    num_steps, rate = first_call, None  # updates begin: probe their cost before a long call
                if step % run_config.eval_every == 0:
                    returns = log_eval(step, since_eval.result(), rate)
                    since_eval = _Means()
                    film(step)
                snapshot(step)
                minutes = (time.perf_counter() - last_save_time) / 60
                timed_out = run_config.checkpoint_minutes > 0 and minutes >= run_config.checkpoint_minutes
                # process 0's clock and signals decide for all processes: they must call alike
                num_steps, timed_out, stopping = distributed.agree((num_steps, timed_out, bool(stop.signal_name)))
                if step % run_config.checkpoint_every == 0 or step == run_config.total_steps or timed_out or stopping:
                    with stop.shielded():
                        checkpoint.save(mngr, step, state, config)
                    last_ckpt, last_save_time = step, time.perf_counter()
                if progress:
                    msg = f"last eval return {np.mean(returns):.1f}" if returns is not None else "no evaluation yet"
                    progress.update(step, msg, rate)
                if stopping and step < run_config.total_steps:
                    raise Interrupted(step, stop.signal_name or "a signal to process 0")
    if returns is None:
        returns = evaluate(trainer, state, step)["return"]
    return {"step": step, "returns": np.asarray(returns), "logdir": logdir, "state": state}
