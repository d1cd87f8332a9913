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
"""

import dataclasses
import os
import sys

from absl import app, flags

from hyperjax.experiments import quiet

with quiet.imports():  # drops mujoco-mjx's "Failed to import warp" lines, nothing else
    from hyperjax import config as cfg
    from hyperjax.agents import maml
    from hyperjax.analysis import maml_noise
    from hyperjax.envs import registry
    from hyperjax.experiments import cli

cli.define(maml.MAMLConfig, exclude=("policy",))
flags.DEFINE_list("policies", list(maml.POLICIES), f"policies to compare; valid: {', '.join(maml.POLICIES)}")
flags.DEFINE_enum("env", "halfcheetah_vel", list(registry.META_ENVS), "meta task")
flags.DEFINE_enum("backend", registry.DEFAULT_BACKEND, list(registry.BACKENDS), "Brax physics backend")
flags.DEFINE_list("iterations", ["50", "150", "300", "450"], "meta-iterations at which to measure (paper's)")
flags.DEFINE_integer("resamples", 50, "meta-steps per measurement (paper: 50)")
flags.DEFINE_integer("parallel", 10, "resampled steps vmapped together (memory: all 50 at once on a big GPU)")
flags.DEFINE_integer("eval_episodes", 0, "episodes per test task in each evaluation; 0: --fast_batch")
flags.DEFINE_integer("seed", 0, "seed (tasks, parameters and trajectories)")
flags.DEFINE_string("logdir", None, "output folder; default runs/maml_noise_<env>_seed<seed>")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    cli.prepare()
    try:
        bad = [p for p in FLAGS.policies if p not in maml.POLICIES]
        if bad:
            raise ValueError(f"--policies: unknown {bad[0]!r}; valid: {', '.join(maml.POLICIES)}")
        iterations = sorted({int(i) for i in FLAGS.iterations})
        if iterations[0] < 1 or FLAGS.resamples < 1 or FLAGS.parallel < 1 or FLAGS.eval_episodes < 0:
            raise ValueError("--iterations, --resamples and --parallel must be positive, --eval_episodes >= 0")
        base = cli.from_flags(maml.MAMLConfig, exclude=("policy",))
        configs = {p: dataclasses.replace(base, policy=p) for p in FLAGS.policies}
        for config in configs.values():
            cfg.check(config)
        logdir = FLAGS.logdir or os.path.join("runs", f"maml_noise_{FLAGS.env}_seed{FLAGS.seed}")
        maml_noise.run(
            FLAGS.env,
            configs,
            iterations,
            FLAGS.resamples,
            FLAGS.parallel,
            FLAGS.eval_episodes,
            FLAGS.seed,
            logdir,
            FLAGS.backend,
        )
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    print(f"table, plot and values in {logdir}")


if __name__ == "__main__":
    app.run(main)
