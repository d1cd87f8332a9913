"""The paper's Fig. 5 (gradient noise of the MAML meta-step), one command:

  python -m hyperjax.experiments.maml_noise --env=halfcheetah_vel --policies=vanilla,context,hyper

Trains each policy with MAML and, at ``--iterations`` (paper: 50,150,300,450), takes
``--resamples`` (50) meta-steps from the same parameters with fresh trajectories and evaluates each
without adaptation on the test tasks. Writes noise.csv (every value), noise.md (the table) and
noise.png (box plots) to --logdir, refreshed after every measurement. MAML's own flags (sizes, rates,
--second_order, --refit_baseline, ...) apply to every policy; their defaults are MAML's ``paper``
preset (the authors' code as it ran: first order, the pre-adaptation baseline). A small CPU check on
point navigation:

  python -m hyperjax.experiments.maml_noise --env=point_nav --iterations=5,10 --resamples=10 \\
      --meta_batch=10 --fast_batch=10 --hidden_sizes=32,32 --hyper_widths=32,64 --hyper_hidden_sizes=32

Resumable as training is: each policy's progress is checkpointed in <logdir>/checkpoints/<policy>/
after every measurement, every --checkpoint_minutes and on the first Ctrl-C or SIGTERM (which stops
at the next iteration or call of --parallel resamples, exit code 130); the same command with
--resume continues, with the same numbers as a run that was never stopped. One process per --logdir.
"""

import dataclasses
import os
import sys
from collections.abc import Sequence

from absl import app, flags

from hyperjax.experiments import quiet

with quiet.imports():  # drops mujoco-mjx's "Failed to import warp" lines, nothing else
    from hyperjax import config as cfg
    from hyperjax.agents import maml
    from hyperjax.analysis import maml_noise
    from hyperjax.envs import registry
    from hyperjax.experiments import checks, cli, rundir, runner
    from hyperjax.train import checkpoint

PAPER_ITERATIONS = (50, 150, 300, 450)


@dataclasses.dataclass
class Settings:
    """The experiment's own flags (MAML's are ``MAMLConfig``'s, but ``policy``)."""

    env: str = cfg.field("halfcheetah_vel", "Meta task.", valid=registry.META_ENVS)
    backend: str = cfg.field(registry.DEFAULT_BACKEND, "Brax physics backend.", valid=registry.BACKENDS)
    iterations: Sequence[int] = cfg.field(
        PAPER_ITERATIONS, "Meta-iterations at which to measure (paper: 50,150,300,450).", valid=cfg.POSITIVE_INT
    )
    resamples: int = cfg.field(50, "Meta-steps per measurement (paper: 50).", valid=cfg.POSITIVE_INT)
    parallel: int = cfg.field(
        10,
        "Resampled steps vmapped together in one call (memory: all 50 at once on a big GPU); a stop waits for a call.",
        valid=cfg.POSITIVE_INT,
    )
    eval_episodes: int = cfg.field(
        0, "Episodes per test task in each evaluation; 0: --fast_batch.", valid=cfg.NON_NEGATIVE
    )
    seed: int = cfg.field(0, "Seed (tasks, parameters and trajectories).", valid=cfg.NON_NEGATIVE)
    logdir: str | None = cfg.field(None, "Output folder; unset: runs/maml_noise_<env>_seed<seed>.")
    resume: bool = cfg.field(False, "Continue the run in --logdir from its checkpoints.")
    checkpoint_minutes: float = cfg.field(
        10.0, "Also checkpoint when this many minutes passed since the last save; 0: off.", valid=cfg.NON_NEGATIVE
    )


cli.define(maml.MAMLConfig, exclude=("policy",))
cli.define(Settings)
flags.DEFINE_list("policies", list(maml.POLICIES), f"Policies to compare; valid: {', '.join(maml.POLICIES)}.")
FLAGS = flags.FLAGS


def settings_from_flags() -> tuple[Settings, list[str], dict]:
    """``(settings, policies, {policy: MAMLConfig})`` from the flags; ValueError (one line, naming the flag)
    for anything bad."""
    example = ",".join(map(str, PAPER_ITERATIONS))
    if not FLAGS.iterations:
        raise ValueError(f"--iterations= is empty; give e.g. --iterations={example}")
    try:
        cfg.int_list("iterations", FLAGS.iterations)
    except ValueError:
        raise ValueError(
            f"--iterations={','.join(FLAGS.iterations)} is not a list of integers; give e.g. --iterations={example}"
        ) from None
    checks.names(",".join(FLAGS.iterations), "--iterations")  # a repeat
    settings = cli.from_flags(Settings)
    cfg.check(settings)
    policies = checks.names(",".join(FLAGS.policies), "--policies", maml.POLICIES)
    base = cli.from_flags(maml.MAMLConfig, exclude=("policy",))
    configs = {p: dataclasses.replace(base, policy=p) for p in policies}
    for config in configs.values():
        cfg.check(config)
    return settings, policies, configs


def main(argv):
    del argv
    cli.prepare()

    def work() -> int:
        s, _, configs = settings_from_flags()
        logdir = s.logdir or os.path.join("runs", f"maml_noise_{s.env}_seed{s.seed}")
        checks.folder(logdir, "--logdir")
        if not os.path.isdir(logdir) and s.resume:  # refused before anything is created
            raise ValueError(f"--resume: no maml_noise run in {logdir} (no such folder); run once without --resume")
        if os.path.isdir(logdir):
            maml_noise.decide(logdir, s.resume)  # before the lock creates anything
        lock = rundir.Lock(logdir)  # one process per folder
        try:
            resume, stale = maml_noise.decide(logdir, s.resume)
            if stale:
                print(rundir.move_aside(logdir, stale, s.resume), file=sys.stderr)
            maml_noise.run(
                s.env, configs, list(s.iterations), s.resamples, s.parallel, s.eval_episodes, s.seed, logdir,
                s.backend, resume=resume, checkpoint_minutes=s.checkpoint_minutes,
                stop_requests=runner.StopRequests,
            )  # fmt: skip
        except maml_noise.Interrupted as e:  # a signal, acted on at a safe point: what was saved, how to go on
            print(("\n" if sys.stderr.isatty() else "") + str(e), file=sys.stderr)
            return 130
        finally:
            lock.release()
        print(f"table, plot and values in {logdir}")
        return 0

    # a second Ctrl-C (or one while compiling) is out at once
    interrupted = "stopped at once; --resume continues from the last complete checkpoint"
    sys.exit(checks.one_line_errors(work, interrupted, refusals=(checkpoint.CheckpointError,)))


if __name__ == "__main__":
    app.run(main, flags_parser=cli.parse_flags)
