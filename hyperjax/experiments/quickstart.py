"""Quickstart: SAC on the pure-JAX pendulum with an MLP critic and an SA-Hyper critic, one plot.

Run: python -m hyperjax.experiments.quickstart
(4 to 12 minutes on 2 CPU cores: 3 min 38 s with AVX-512, 10-11.5 min with AVX2 only)
Writes runs/quickstart-<time>/{mlp,sa_hyper}/ (metrics, curves, checkpoints) and
runs/quickstart-<time>/curves.png with both learning curves. Expect both to climb from about -1400
to better than -300 within 10k steps.

The MLP critic is the paper's (2x256). The SA-Hyper critic is reduced (primary widths
64-128-256, dynamic hidden layer 64) so that it fits the time: at paper size one update takes
~0.15 s on 2 AVX-512 cores and ~0.8 s on 2 AVX2 cores (docs/benchmarks.md), 25 minutes to 2 hours for this run.
"""

import os
import sys
import time

from absl import app, flags

from hyperjax.experiments import quiet

with quiet.imports():  # drops mujoco-mjx's "Failed to import warp" lines, nothing else
    from hyperjax.agents import sac
    from hyperjax.experiments import cli, runner
    from hyperjax.train import checkpoint, logger

flags.DEFINE_integer("total_steps", 10_000, "environment steps per critic")
flags.DEFINE_integer("num_seeds", 2, "seeds trained together")
flags.DEFINE_string("logdir", None, "output folder (default: runs/quickstart-<date>-<time>, new each run)")
FLAGS = flags.FLAGS

CRITICS = {
    "mlp": {},
    "sa_hyper": dict(hidden_sizes=(64,), latent_widths=(64, 128, 256)),
}


def plot(logdir: str, names) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for name in names:
        rows = logger.read_csv(os.path.join(logdir, name, "metrics.csv"))
        steps = [int(r["step"]) for r in rows]
        seeds = [[float(r[k]) for r in rows] for k in rows[0] if k.startswith("return_seed")]
        low = [min(v) for v in zip(*seeds)]
        high = [max(v) for v in zip(*seeds)]
        ax.fill_between(steps, low, high, alpha=0.2)
        ax.plot(steps, [float(r["return_mean"]) for r in rows], lw=2, label=name)
    ax.set(xlabel="environment steps", ylabel="evaluation return", title="SAC on pendulum (band: min-max over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    path = os.path.join(logdir, "curves.png")
    fig.savefig(path)
    plt.close(fig)
    return path


def main(argv):
    del argv
    cli.prepare()
    try:
        _main()
    except (ValueError, checkpoint.CheckpointError, runner.TrainingDiverged) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except runner.Interrupted as e:
        print(("\n" if sys.stderr.isatty() else "") + str(e), file=sys.stderr)
        sys.exit(130)
    except KeyboardInterrupt:
        print("\ninterrupted: stopped at once; runs keep their last complete checkpoint", file=sys.stderr)
        sys.exit(130)


def _main():
    start = time.perf_counter()
    logdir = FLAGS.logdir or time.strftime("runs/quickstart-%Y%m%d-%H%M%S")
    for name, overrides in CRITICS.items():
        print(f"== SAC, critic {name}, {FLAGS.num_seeds} seeds, {FLAGS.total_steps:,} steps")
        run_config = runner.RunConfig(
            env="pendulum",
            num_seeds=FLAGS.num_seeds,
            total_steps=FLAGS.total_steps,
            eval_every=1000,
            eval_episodes=10,
            buffer_size=FLAGS.total_steps,
            checkpoint_every=FLAGS.total_steps,
            logdir=os.path.join(logdir, name),
            resume=False,
        )
        result = runner.run("sac", run_config, sac.SACConfig(critic=name, critic_overrides=overrides))
        print(f"   final return per seed: {', '.join(f'{r:.1f}' for r in result['returns'])}")
    print(f"plot: {plot(logdir, CRITICS)}  (wall time {time.perf_counter() - start:.0f}s)")


if __name__ == "__main__":
    app.run(main, flags_parser=cli.parse_flags)
