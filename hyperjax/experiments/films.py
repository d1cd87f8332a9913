"""``--video_every``: at step 0 and at evaluations, a short video of the first seed's deterministic
policy (``video.record`` of ``Trainer.snapshot``) in ``<logdir>/videos/training_step_<N>.mp4`` and
TensorBoard, made by process 0."""

import os
import sys
from typing import NamedTuple

import jax

from hyperjax.experiments import evaluations
from hyperjax.train import distributed, video
from hyperjax.train import trainer as trainer_lib

VIDEOS = "videos"  # the folder of a run's videos (--video_every: training_step_<N>.mp4; the render CLI: step_<N>.mp4)
# --video_every's clips: one episode, small frames (rendering costs seconds per clip on a CPU)
VIDEO_EPISODES, VIDEO_WIDTH, VIDEO_HEIGHT = 1, 320, 240


class Filming(NamedTuple):
    """What a run films (built once: ``video.record`` compiles its rollout once per agent)."""

    every: int  # training steps between videos, a multiple of the evaluations'
    spec: object  # the env (``registry.EnvSpec``)
    agent: object  # ``Algorithm.make_agent``'s, whose policy ``Trainer.snapshot``'s params run
    seed: int  # the run's first seed: the episode's key
    logdir: str


def film(filming: Filming | None, log: evaluations.Log, trainer: trainer_lib.Trainer, state, step: int) -> None:
    """At an evaluation step: a video of the first seed's deterministic policy (process 0)."""
    if filming is None or step % filming.every:
        return
    params = distributed.to_host(trainer.snapshot(state))  # [S, ...]; with several processes all gather
    if log.board is None:  # not process 0
        return
    path = os.path.join(filming.logdir, VIDEOS, f"training_step_{step}.mp4")
    clip = video.record(
        filming.spec, filming.agent, jax.tree.map(lambda x: x[0], params), jax.random.key(filming.seed), path,
        VIDEO_EPISODES, VIDEO_WIDTH, VIDEO_HEIGHT,
    )  # fmt: skip
    log.board.video(step, path, clip.fps)
    progress = log.progress
    if progress is not None:  # verbose
        took = clip.rollout_seconds + clip.render_seconds
        erase = "\r\033[K" if progress.tty and step > progress.start else ""  # the progress bar's line
        name = os.path.relpath(path, filming.logdir)
        print(f"{erase}video: {name} (return {clip.returns[0]:.1f}, {took:.1f} s to render)", file=sys.stderr)
