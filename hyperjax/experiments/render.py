"""A video of a trained run's deterministic policy.

  python -m hyperjax.experiments.render --run=runs/td3_hopper_sa_hyper_seed0
  python -m hyperjax.experiments.render --run=runs/td3_hopper_sa_hyper_seed0 --step=100000 --format=gif

Loads the run's config, agent and parameters (the latest checkpoint, or ``--step``: a checkpoint's
or a ``--snapshot_every`` snapshot's step; ``hyperjax/experiments/trained.py``), rolls out
``--episodes`` deterministic episodes from seed-fixed start states and writes them, captioned with
the step and the return so far, to ``<run>/videos/step_<N>.mp4`` (or ``--out``) at the env's
control rate (``hyperjax/train/video.py``). MuJoCo envs render headless: ``MUJOCO_GL`` is set to a
working backend unless given (``hyperjax/train/headless.py``).
"""

import os
import sys

from absl import app, flags

from hyperjax.train import headless

headless.choose()  # before anything imports mujoco, which reads MUJOCO_GL once

from hyperjax.experiments import quiet  # noqa: E402

try:
    with quiet.imports():  # drops mujoco-mjx's "Failed to import warp" lines, nothing else
        import jax

        from hyperjax.experiments import cli, runner, trained
        from hyperjax.train import checkpoint, video
except Exception as e:  # importing mujoco fails outright under some unusable MUJOCO_GL (osmesa without OSMesa)
    if not os.environ.get("MUJOCO_GL"):
        raise
    print(f"error: {headless.missing_message(os.environ['MUJOCO_GL'])} ({type(e).__name__}: {e})", file=sys.stderr)
    sys.exit(1)

flags.DEFINE_string("run", None, "A training run's folder (its --logdir).")
flags.DEFINE_integer(
    "step", None, "Step of a checkpoint or parameter snapshot; unset: the latest checkpoint (or snapshot)."
)
flags.DEFINE_integer("episodes", 2, "Episodes, one after another.")
flags.DEFINE_integer("seed", 0, "Which of the run's seeds (0: its first, --seed of the run).")
flags.DEFINE_string("out", None, "The video file; unset: <run>/videos/step_<N>.<format>.")
flags.DEFINE_integer("width", video.WIDTH, "Frame width in pixels (even for mp4).")
flags.DEFINE_integer("height", video.HEIGHT, "Frame height in pixels (even for mp4).")
flags.DEFINE_string("format", None, "mp4 or gif; unset: --out's extension, else mp4.")


def output_path(logdir: str, step: int, seed: int, fmt: str) -> str:
    """``<logdir>/videos/step_<N>[_seed<K>].<fmt>``."""
    name = f"step_{step}" + (f"_seed{seed}" if seed else "")
    return os.path.join(logdir, "videos", f"{name}.{fmt}")


def main(argv) -> None:
    del argv
    cli.prepare()
    f = flags.FLAGS
    try:
        if not f.run:
            raise ValueError("give --run=<folder of a training run>")
        fmt = video.video_format(f.out, f.format)
        video.check(f.episodes, f.width, f.height, fmt)  # before any loading
        algo, run_config, agent_config = trained.load(f.run)
        agent = trained.make_agent(algo, run_config, agent_config)
        state, step, kind = trained.agent_state(f.run, agent, run_config, f.step, f.seed)
        path = f.out or output_path(f.run, step, f.seed, fmt)
        seed = run_config.seed + f.seed
        spec = runner.env_spec(run_config)
        recording = video.record(spec, agent, state, jax.random.key(seed), path, f.episodes, f.width, f.height, fmt)
    except (ValueError, checkpoint.CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    r = recording
    returns = ", ".join(f"{x:.1f}" for x in r.returns)
    lengths = ", ".join(str(n) for n in r.lengths)
    print(
        f"{algo.upper()} {run_config.env} ({spec.describe()}), {kind} at step {step:,}, seed {seed}: "
        f"returns {returns} ({lengths} steps)"
    )
    print(
        f"wrote {r.path}: {r.frames} frames, {f.width}x{f.height}, {r.fps:.1f} fps ({r.video_seconds:.1f} s of video)"
    )
    print(
        f"rollout {r.rollout_seconds:.1f} s (compiling included); frames and encoding {r.render_seconds:.1f} s, "
        f"{r.render_seconds / r.video_seconds:.2f} s per second of video"
    )


if __name__ == "__main__":
    app.run(main)
