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

from hyperjax.experiments import quiet

with quiet.imports(render=True):  # MUJOCO_GL chosen first; the warp lines dropped
    import jax

    from hyperjax.experiments import checks, cli, runner, trained
    from hyperjax.train import checkpoint, headless, video


def define_flags() -> None:
    """The command's flags (defined when it runs, so tests can import this module beside others)."""
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


def video_format(out: str | None, fmt: str | None) -> str:
    """``--format``, else ``--out``'s extension, else mp4; ValueError (one line) for an extension that is
    no video format, or one that disagrees with ``--format``."""
    extension = os.path.splitext(out or "")[1].lstrip(".").lower()
    if extension and extension not in video.FORMATS and fmt is None:
        raise ValueError(f"--out={out}: .{extension} is no video format; valid: {', '.join(video.FORMATS)}")
    fmt = video.video_format(out, fmt)
    if extension in video.FORMATS and extension != fmt:
        raise ValueError(f"--out={out} and --format={fmt} disagree; give one of them")
    return fmt


def main(argv) -> None:
    del argv
    cli.prepare()
    f = flags.FLAGS
    partial = None
    try:
        if not f.run:
            raise ValueError("give --run=<folder of a training run>")
        fmt = video_format(f.out, f.format)
        video.check(f.episodes, f.width, f.height, fmt)  # before any loading
        if f.out:
            checks.output_file(f.out, "--out", os.path.join(f.out, f"step_0.{fmt}"))
        algo, run_config, agent_config = trained.load(f.run)
        if not f.out:
            try:
                checks.folder(os.path.join(f.run, runner.VIDEOS), None)
            except ValueError as e:
                raise ValueError(f"the run's videos folder {e}; give --out=<a video file elsewhere>") from None
        agent = trained.make_agent(algo, run_config, agent_config)
        state, step, kind = trained.agent_state(f.run, agent, run_config, f.step, f.seed)
        path = f.out or output_path(f.run, step, f.seed, fmt)
        # written beside the file, then renamed: an existing video is replaced only by a complete one
        partial = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.partial.{fmt}")
        seed = run_config.seed + f.seed
        spec = runner.env_spec(run_config)
        recording = video.record(spec, agent, state, jax.random.key(seed), partial, f.episodes, f.width, f.height, fmt)
        os.replace(partial, path)
    except video.RenderError as e:
        gl_failed = headless.FAILED and "MuJoCo cannot render" in str(e)
        _fail(f"error: {headless.FAILED if gl_failed else e}", partial)
    except (ValueError, checkpoint.CheckpointError) as e:
        _fail(f"error: {e}", partial)
    except OSError as e:
        _fail(f"error: {checks.os_error(e)}", partial)
    except KeyboardInterrupt:
        _fail("interrupted: no video written", partial, code=130)
    r = recording
    returns = ", ".join(f"{x:.1f}" for x in r.returns)
    lengths = ", ".join(str(n) for n in r.lengths)
    print(
        f"{algo.upper()} {run_config.env} ({spec.describe()}), {kind} at step {step:,}, seed {seed}: "
        f"returns {returns} ({lengths} steps)"
    )
    print(f"wrote {path}: {r.frames} frames, {f.width}x{f.height}, {r.fps:.1f} fps ({r.video_seconds:.1f} s of video)")
    print(
        f"rollout {r.rollout_seconds:.1f} s (compiling included); frames and encoding {r.render_seconds:.1f} s, "
        f"{r.render_seconds / r.video_seconds:.2f} s per second of video"
    )


def _fail(line: str, partial: str | None, code: int = 1) -> None:
    """Prints ``line`` (one line), removes a half-written video, exits with ``code``."""
    if partial and os.path.exists(partial):
        os.remove(partial)
    print(("\n" if code == 130 and sys.stderr.isatty() else "") + line, file=sys.stderr)
    sys.exit(code)


if __name__ == "__main__":
    define_flags()
    app.run(main, flags_parser=cli.parse_flags)
