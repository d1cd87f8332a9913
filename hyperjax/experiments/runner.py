"""Runs one experiment of any registered algorithm: validates, trains, evaluates, logs, checkpoints.

Used by the entry points (``python -m hyperjax.experiments.sac`` ..., which turn absl flags into
``RunConfig`` and the algorithm's config) and directly by tests. The runner knows algorithms only
through their registry entry (``agents.base.Algorithm``) and trainers only through
``train.trainer.Trainer``: it logs whatever metrics a trainer reports.

``run`` holds the run's folder, ``_train`` is the training loop; each concern it touches is a piece of
its own: the folder and its lock (``rundir``), restore or initialise (``_start``), call sizing
(``calls``), evaluation and logging with the progress line (``evaluations``), videos (``films``),
checkpoints and snapshots (``saves``), signals (``stops``), the NaN guard (``_check_finite``).
"""

import contextlib
import dataclasses
import json
import os
import sys
import time

import jax
import numpy as np

from hyperjax import config as cfg
from hyperjax.agents import registry as algorithms
from hyperjax.envs import registry
from hyperjax.experiments import calls, evaluations, films, rundir, saves, stops
from hyperjax.train import checkpoint, distributed
from hyperjax.train import trainer as trainer_lib

CALL_SECONDS = 4.0  # each training call is sized to about this long: progress and Ctrl-C within seconds
BEAT_SECONDS = 10.0  # a host-stepped call longer than this says what it is doing at least this often
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
SNAPSHOTS = saves.SNAPSHOTS  # <logdir>/snapshots: parameter snapshots (checkpoint.save / restore)
VIDEOS = films.VIDEOS  # <logdir>/videos (--video_every: training_step_<N>.mp4; the render CLI: step_<N>.mp4)
VIDEO_EPISODES, VIDEO_WIDTH, VIDEO_HEIGHT = films.VIDEO_EPISODES, films.VIDEO_WIDTH, films.VIDEO_HEIGHT


@dataclasses.dataclass
class RunConfig:
    """The experiment around the agent. Defaults: the paper's (1M steps, eval every 5000)."""

    env: str = cfg.field("ant", "Environment: pure JAX, Brax/MJX, or native Gymnasium MuJoCo.", valid=registry.ENVS)
    backend: str = cfg.field(
        registry.DEFAULT_BACKEND,
        "Brax physics backend; for the MuJoCo meta tasks also 'native' (MuJoCo's C engine on the host) or "
        "'auto' (native without an accelerator, else mjx).",
        valid=registry.RUN_BACKENDS,
    )
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


Interrupted, StopRequests = stops.Interrupted, stops.StopRequests  # signals (stops.py)


def legacy_run(run: RunConfig) -> dict:
    """How a run begun before ``--physics`` existed stepped its env (Brax's models, MuJoCo's contact
    forces), as the values a saved config without those keys is compared as: this command's own where
    it runs the same physics, so only a run that would now change models is refused (naming the flag)."""
    if registry.resolve_physics(run.env, run.env_preset, run.physics) == "brax":
        return {"run.physics": run.physics, "run.contact_forces": run.contact_forces}
    return {"run.physics": "brax", "run.contact_forces": "mujoco"}


def env_spec(run: RunConfig) -> registry.EnvSpec:
    return registry.EnvSpec(run.env, run.backend, run.env_preset, run.episode_length, run.physics, run.contact_forces)


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
    make = algorithms.get(algo).make_trainer  # (a re-registered name builds anew)
    key = (algo, make, repr(agent_config), repr(setting(run)))
    if key not in _TRAINERS:
        _TRAINERS.clear()
        _TRAINERS[key] = make(agent_config, setting(run))
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
    """``run`` once its folder is held and its start decided (``rundir.decide``): the training loop."""
    algorithm, run = algorithms.get(algo), run_config
    with stops.StopRequests() as stop:  # until the first training call returns: signals end the run at once
        t_build = _compiling(verbose)
        trainer = _trainer(algo, run, agent_config)  # validate built it
        config = config_dict(algo, run, agent_config)
        store = saves.open_saves(
            logdir, config, stop.shielded, checkpoint_every=run.checkpoint_every,
            checkpoint_minutes=run.checkpoint_minutes, snapshot_every=run.snapshot_every, total_steps=run.total_steps,
        )  # fmt: skip
        filming = _filming(algorithm, run, agent_config, logdir)
        state, step = _start(algo, run, agent_config, trainer, store, logdir, primary)
        log = _open_log(algo, run, agent_config, trainer, logdir, step, primary, verbose)
        plan, since_eval = _call_plan(algorithm, run, agent_config, trainer), evaluations.Means()
        returns = _at_evaluation(log, filming, trainer, state, step, {}, None) if step == 0 else None
        saves.snapshot(store, trainer, state, step)
        sizing, store.last_time = calls.start(plan), time.perf_counter()  # time-based checkpoints count from here
        with evaluations.closing(log), _heartbeats(trainer, stop, verbose):
            while step < run.total_steps:
                num_steps = calls.next_call(plan, sizing, step)
                t0 = time.perf_counter()
                state, metrics, num_steps, partial = _call(trainer, state, step, num_steps)
                if not num_steps:  # a stop cut the call short before its first step ended
                    _stop_now(store, state, step, stop, partial)
                metrics = distributed.to_host(metrics)
                elapsed = time.perf_counter() - t0
                _check_finite(metrics, step, num_steps, store)
                if not sizing.compiled:  # from now on a signal stops the run at the end of a call
                    _compiled(stop, verbose, t_build, num_steps)
                sizing = calls.after_call(plan, sizing, step, num_steps, elapsed)
                step += num_steps
                since_eval.add(metrics, num_steps)
                if step % run.eval_every == 0:
                    returns = _at_evaluation(log, filming, trainer, state, step, since_eval.result(), sizing.rate)
                    since_eval = evaluations.Means()
                saves.snapshot(store, trainer, state, step)
                # process 0's call size, clock and signals decide for all processes: they must call alike
                due = (sizing.target, saves.timed_out(store), bool(stop.signal_name))
                target, timed_out, stopping = distributed.agree(due)
                sizing = sizing._replace(target=target)
                saves.checkpoint_if_due(store, state, step, now=timed_out or stopping)
                evaluations.show_progress(log, step, returns, sizing.rate)
                if stopping and step < run.total_steps:
                    raise Interrupted(step, stop.signal_name or "a signal to process 0")
    if returns is None:  # resumed at its end: nothing left to train
        returns = evaluations.evaluate(trainer, state, step)["return"]
    return {"step": step, "returns": np.asarray(returns), "logdir": logdir, "state": state}


def _call(trainer: trainer_lib.Trainer, state, step: int, num_steps: int):
    """One training call: ``(state, metrics, steps done, partial)``, fewer steps than asked when a stop
    request cut a host-stepped call short at a heartbeat (``trainer_lib.CallStopped``; ``partial``: the
    state holds part of the next step too)."""
    try:
        state, metrics = trainer.run_chunk(state, step, num_steps)
        return state, metrics, num_steps, False
    except trainer_lib.CallStopped as cut:
        return cut.state, cut.metrics, cut.steps, cut.partial


def _stop_now(store: saves.Saves, state, step: int, stop: stops.StopRequests, partial: bool):
    """A stop before a call's first step ended: checkpoint ``state`` (the call's input, unless step's
    checkpoint holds it already; or, ``partial``, that plus part of the next step, replacing step's
    checkpoint), then stop."""
    if partial:
        saves.checkpoint_now(store, state, step, replace=True)
    elif store.last_step != step:
        saves.checkpoint_now(store, state, step)
    raise Interrupted(step, stop.signal_name or "a signal")


@contextlib.contextmanager
def _heartbeats(trainer: trainer_lib.Trainer, stop: stops.StopRequests, verbose: bool):
    """While training, a host-stepped trainer's heartbeats print what it is doing after every
    ``BEAT_SECONDS`` of silence, and a stop request cuts its call short (one process only: several
    must make their calls alike, so they stop at a call's end)."""
    if trainer.heartbeat is None:
        yield
        return
    last = [time.perf_counter()]

    def listener(what: str) -> bool:
        now = time.perf_counter()
        if verbose and now - last[0] >= BEAT_SECONDS:
            print(f"  ... {what}", file=sys.stderr, flush=True)
            last[0] = now
        return stop.signal_name is not None and jax.process_count() == 1

    trainer.heartbeat.listen(listener)
    try:
        yield
    finally:
        trainer.heartbeat.listen(None)


def _compiling(verbose: bool) -> float:
    """Says what the first minutes are spent on; returns when the build began."""
    t_build = time.perf_counter()
    if verbose:
        print(
            "compiling: init, evaluation and the training program (the first training call); "
            "Ctrl-C now stops at once, nothing is trained yet...",
            file=sys.stderr,
        )
    return t_build


def _compiled(stop: stops.StopRequests, verbose: bool, t_build: float, num_steps: int) -> None:
    """The first training call returned: signals now stop the run at a call's end (it checkpoints first)."""
    stop.graceful()
    if verbose:
        took = time.perf_counter() - t_build
        print(f"compiled in {took:.1f} s (with the first {num_steps} training steps)", file=sys.stderr)


def _start(algo: str, run: RunConfig, agent_config, trainer, store: saves.Saves, logdir: str, primary: bool):
    """Restore or initialise: ``(state, step)`` of the latest intact checkpoint (``--resume``; the run can
    fall back on it) or a fresh init at step 0; then the run's config.json (process 0)."""
    keys = jax.vmap(jax.random.key)(run.seed + np.arange(run.num_seeds))
    if run.resume:
        algorithm = algorithms.get(algo)
        abstract = jax.eval_shape(trainer.init, keys)
        # a setting the saved config lacks was added since the run began: it ran as that setting's
        # value of before (legacy_run, Algorithm.legacy_defaults), else its default
        defaults = {
            **config_dict(algo, RunConfig(), algorithm.config()),
            **legacy_run(run),
            **{f"agent.{k}": v for k, v in algorithm.legacy_defaults.items()},
        }
        state, step = checkpoint.restore_latest(
            store.checkpoints, abstract, store.config, ignore=RESUMABLE, defaults=defaults
        )
        store.last_step = step
    else:
        state, step = trainer.init(keys), 0
    if primary:
        with open(os.path.join(logdir, "config.json"), "w") as f:
            json.dump(store.config, f, indent=2)
    return state, step


def _filming(algorithm, run: RunConfig, agent_config, logdir: str) -> films.Filming | None:
    """``--video_every``'s env and agent, built once (``video.record`` compiles its rollout once per agent)."""
    if not run.video_every:
        return None
    spec = env_spec(run)
    return films.Filming(run.video_every, spec, algorithm.make_agent(agent_config, *env_sizes(spec)), run.seed, logdir)


def _open_log(algo: str, run: RunConfig, agent_config, trainer, logdir: str, step: int, primary: bool, verbose: bool):
    algorithm = algorithms.get(algo)
    return evaluations.open_log(
        logdir, trainer, title=f"{algo.upper()} {run.env} ({algorithm.run_name(agent_config)})",
        step_name=algorithm.step_name, seeds=run.num_seeds, total_steps=run.total_steps, step=step,
        resume=run.resume, primary=primary, verbose=verbose,
    )  # fmt: skip


def _call_plan(algorithm, run: RunConfig, agent_config, trainer) -> calls.Plan:
    """Call sizing for the run: every call a multiple of ``Trainer.step_multiple``, ending at evaluations,
    checkpoints, snapshots and where updates begin (``Algorithm.first_update``)."""
    return calls.plan(
        total_steps=run.total_steps, eval_every=run.eval_every, checkpoint_every=run.checkpoint_every,
        snapshot_every=run.snapshot_every, first_update=algorithm.first_update(agent_config),
        multiple=trainer.step_multiple, first_call_steps=algorithm.first_call_steps, seconds=CALL_SECONDS,
        max_steps=MAX_CALL_STEPS,
    )  # fmt: skip


def _at_evaluation(log, filming, trainer, state, step: int, metrics: dict, rate) -> np.ndarray:
    """An evaluation step: the row of returns and metrics, then (``--video_every``) the video."""
    returns = evaluations.record(log, trainer, state, step, metrics, rate)
    films.film(filming, log, trainer, state, step)
    return returns


def _check_finite(metrics: dict, step: int, num_steps: int, store: saves.Saves) -> None:
    """The NaN guard: ``TrainingDiverged`` if a seed's state stopped being finite in the call (before
    that state is checkpointed: the last good checkpoint stays the newest)."""
    if np.all(metrics["finite"]):
        return
    bad = [int(s) for s in np.flatnonzero(~np.asarray(metrics["finite"]))]
    kept = "no checkpoint"
    if store.last_step is not None:
        kept = f"the last good checkpoint (step {store.last_step}) is kept"
    raise TrainingDiverged(
        f"NaN/inf loss or parameters in seed(s) {bad} between steps {step} and {step + num_steps}; "
        f"stopped, {kept} in {store.directory}. Try lower learning rates or --reward_scale"
    )
