"""Videos of policies (hyperjax/train/video.py) and of trained runs (python -m hyperjax.experiments.render):
a tiny trained pendulum run through the CLI (frame count, size, motion), two of its saved policies
(a snapshot and a checkpoint) giving different videos, a MuJoCo env through MJX rendered headless,
videos during training (--video_every), and one-line errors."""

import os
import subprocess
import sys

import imageio.v3 as iio
import jax
import numpy as np
import pytest

from hyperjax.agents import registry as algorithms
from hyperjax.envs import registry
from hyperjax.experiments import runner, trained
from hyperjax.train import headless, logger, video

LENGTH = 20  # pendulum episode length of the tiny run: 20 steps at 20 Hz, a frame per state
RENDER = [sys.executable, "-m", "hyperjax.experiments.render"]
# the CLI tests' subprocesses start with fork + exec, which JAX warns about needlessly
pytestmark = pytest.mark.filterwarnings(r"ignore:os\.fork\(\) was called:RuntimeWarning")


def _tiny_td3(logdir: str, **run_kw):
    """``(run_config, agent_config)`` of a tiny TD3 pendulum run: 200 steps, evaluations and checkpoints
    every 100 (the same programs whatever ``run_kw`` asks of snapshots and videos: compiled once)."""
    algorithm = algorithms.get("td3")
    agent_config = algorithm.make_config(critic="mlp", start_steps=50, batch_size=32, actor_hidden_sizes=(32, 32))
    agent_config.critic_overrides = {"hidden_sizes": (32, 32)}
    run_config = runner.RunConfig(
        env="pendulum",
        episode_length=LENGTH,
        total_steps=200,
        eval_every=100,
        eval_episodes=1,
        buffer_size=1000,
        checkpoint_every=100,
        logdir=logdir,
        **run_kw,
    )
    return run_config, agent_config


@pytest.fixture(scope="module")
def pendulum_run(tmp_path_factory) -> str:
    """A tiny TD3 pendulum run: checkpoints at 100 and 200, snapshots at 0, 100 and 200."""
    logdir = str(tmp_path_factory.mktemp("render") / "run")
    runner.run("td3", *_tiny_td3(logdir, snapshot_every=100), verbose=False)
    return logdir


def _moving(frames: np.ndarray) -> float:
    """The fraction of consecutive frame pairs that differ (a still video: 0)."""
    diffs = np.abs(frames[1:].astype(np.int16) - frames[:-1]).mean(axis=(1, 2, 3))
    return float(np.mean(diffs > 0.5))


def test_cli_renders_the_latest_checkpoint_of_a_trained_run(pendulum_run):
    cmd = [*RENDER, f"--run={pendulum_run}", "--episodes=2", "--width=96", "--height=64"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    path = os.path.join(pendulum_run, "videos", "step_200.mp4")  # the latest checkpoint
    assert f"wrote {path}: {2 * (LENGTH + 1)} frames, 96x64, 20.0 fps" in out.stdout, out.stdout
    assert "checkpoint at step 200, seed 0: returns " in out.stdout and "per second of video" in out.stdout
    frames = iio.imread(path, plugin="FFMPEG", index=None)
    assert frames.shape == (2 * (LENGTH + 1), 64, 96, 3)  # 2 episodes x (reset + 20 steps)
    assert _moving(frames) > 0.6  # a still video: 0; the trained pendulum slows near the top (~0.75 measured)


def test_two_saved_policies_give_different_videos_and_gif(pendulum_run, tmp_path):
    algo, run_config, agent_config = trained.load(pendulum_run)
    agent = trained.make_agent(algo, run_config, agent_config)
    spec = runner.env_spec(run_config)
    frames, returns = {}, {}
    for step in (0, 200):  # the untrained policy's snapshot, the final checkpoint
        state, got, kind = trained.agent_state(pendulum_run, agent, run_config, step)
        assert (got, kind) == (step, "snapshot" if step == 0 else "checkpoint")
        path = str(tmp_path / f"{step}.gif")
        recording = video.record(spec, agent, state, jax.random.key(0), path, episodes=1, width=64, height=48)
        assert recording.frames == LENGTH + 1 and recording.fps == 20.0 and recording.lengths.tolist() == [LENGTH]
        frames[step], returns[step] = iio.imread(path, index=None)[..., :3], recording.returns[0]
        assert frames[step].shape[1:] == (48, 64, 3) and _moving(frames[step]) > 0.5
    assert returns[0] != returns[200]
    n = min(len(frames[0]), len(frames[200]))  # GIF merges identical consecutive frames
    assert np.abs(frames[0][:n].astype(np.int16) - frames[200][:n]).mean() > 0.5


def test_saved_steps_and_their_errors(pendulum_run, tmp_path):
    assert trained.checkpoint_steps(pendulum_run) == [100, 200]
    assert trained.snapshot_steps(pendulum_run) == [0, 100, 200]
    algo, run_config, agent_config = trained.load(pendulum_run)
    agent = trained.make_agent(algo, run_config, agent_config)
    expected = r"--step=150: .* no checkpoint or snapshot at that step; checkpoints: 100, 200; snapshots: 0, 100, 200"
    with pytest.raises(ValueError, match=expected):
        trained.agent_state(pendulum_run, agent, run_config, 150)
    with pytest.raises(ValueError, match=r"--seed=1: the run has 1 seed\(s\); valid: 0 .. 0"):
        trained.agent_state(pendulum_run, agent, run_config, seed=1)
    with pytest.raises(ValueError, match=r"no such folder"):
        trained.load(str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match=r"holds no run \(no config.json\)"):
        trained.load(str(tmp_path))
    with pytest.raises(video.RenderError, match=r"--format=avi is not valid; valid: mp4, gif"):
        video.video_format(None, "avi")
    assert video.video_format("a/b.gif") == "gif" and video.video_format(None) == "mp4"
    with pytest.raises(video.RenderError, match=r"H.264 \(mp4\) needs even sizes"):
        video.check(1, 65, 48, "mp4")


def test_a_bad_run_is_a_one_line_error(tmp_path):
    out = subprocess.run([*RENDER, f"--run={tmp_path / 'nowhere'}"], capture_output=True, text=True, timeout=300)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 1 and len(lines) == 1, out.stderr
    assert lines[0].startswith("error: --run=") and "no such folder" in lines[0]


def test_frame_rate_and_the_frames_kept():
    assert video.frame_skip(0.05, 60) == (1, pytest.approx(20.0))  # pendulum, Ant
    assert video.frame_skip(0.008, 60) == (3, pytest.approx(125 / 3))  # Hopper: 125 Hz
    assert video.frame_steps(7, 3) == [0, 3, 6, 7]  # the last state always
    assert video.episode_lengths(np.array([[0, 0, 1, 1], [0, 0, 0, 0]])).tolist() == [3, 4]


def test_headless_backend_choice():
    """In a fresh process (MuJoCo not imported): the first working backend; none; the user's own."""
    code = """if True:
        import os, sys
        from hyperjax.train import headless
        headless.works = lambda backend: False
        print(headless.choose(), os.environ.get("MUJOCO_GL"))
        headless.works = lambda backend: backend == "osmesa"
        print(headless.choose(), os.environ.get("MUJOCO_GL"))
        os.environ["MUJOCO_GL"] = "glfw"
        print(headless.choose(), "mujoco" in sys.modules)
    """
    env = {k: v for k, v in os.environ.items() if k != "MUJOCO_GL"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.split("\n")[:3] == ["None None", "osmesa osmesa", "glfw False"], out.stderr
    assert "apt-get install libegl1 libopengl0 libgl1-mesa-dri" in headless.missing_message()


@pytest.mark.skipif(not headless.works(os.environ.get("MUJOCO_GL") or "egl"), reason=headless.missing_message())
def test_mjx_hopper_renders_headless(tmp_path):
    """An untrained agent's short episodes on MJX Hopper through ``video.record``: MuJoCo frames."""
    spec = registry.EnvSpec("hopper", episode_length=6)
    algorithm = algorithms.get("td3")
    config = algorithm.make_config(critic="mlp", actor_hidden_sizes=(8,))
    agent = algorithm.make_agent(config, *runner.env_sizes(spec))
    path = str(tmp_path / "hopper.mp4")
    recording = video.record(spec, agent, agent.init(jax.random.key(0)), jax.random.key(1), path, 1, 64, 48)
    assert recording.fps == pytest.approx(125 / 3) and recording.lengths.tolist() == [6]
    frames = iio.imread(path, plugin="FFMPEG", index=None)
    assert frames.shape == (3, 48, 64, 3) and recording.frames == 3  # states 0, 3, 6
    body = frames[:, 12:]  # below the caption
    assert body.std() > 20 and len(np.unique(body.reshape(-1, 3), axis=0)) > 50  # a scene, not a blank


def test_videos_during_training(tmp_path, capsys):
    """--video_every=--eval_every: a clip at step 0 and at each evaluation, logged; TensorBoard gets
    them where moviepy is installed (else the MP4s alone)."""
    logdir = str(tmp_path / "run")
    runner.run("td3", *_tiny_td3(logdir, video_every=100), verbose=True)
    lines = [line for line in capsys.readouterr().err.split("\n") if "video: " in line]
    assert len(lines) == 3, lines
    for line, step in zip(lines, (0, 100, 200)):
        assert line.startswith(f"video: videos/training_step_{step}.mp4 (return "), line
        assert line.endswith(" s to render)"), line
        frames = iio.imread(os.path.join(logdir, "videos", f"training_step_{step}.mp4"), plugin="FFMPEG", index=None)
        assert frames.shape == (LENGTH + 1, runner.VIDEO_HEIGHT, runner.VIDEO_WIDTH, 3)  # one episode
    clips = sorted(os.listdir(os.path.join(logdir, "videos")))
    assert clips == ["training_step_0.mp4", "training_step_100.mp4", "training_step_200.mp4"]

    board = logger.TensorBoard(str(tmp_path / "board"))
    added = []
    board.writer.add_video = lambda tag, clip, step, fps: added.append((tag, clip.shape, clip.dtype, step, fps))
    assert board.video(100, os.path.join(logdir, "videos", "training_step_100.mp4"), 20.0) == board.videos
    board.videos = True  # as with moviepy (not a dependency): frames [1, T, C, H, W] uint8
    board.MAX_VIDEO_FRAMES = 10  # every 3rd of the 21 frames at a third of the rate
    assert board.video(100, os.path.join(logdir, "videos", "training_step_100.mp4"), 20.0)
    assert added[-1] == ("video/deterministic_policy", (1, 7, 3, 240, 320), np.uint8, 100, pytest.approx(20 / 3))
    board.close()


@pytest.mark.parametrize(
    "algo,env,every,message",
    [
        ("td3", "pendulum", 150, r"^--video_every=150 must be a multiple of --eval_every=100 \(videos are made"),
        ("maml", "point_nav", 100, r"^--video_every: maml on point_nav cannot film during training \(sac, td3 on JAX"),
    ],
)
def test_bad_video_every_is_a_one_line_error(algo, env, every, message):
    algorithm = algorithms.get(algo)
    run = runner.RunConfig(env=env, total_steps=200, eval_every=100, checkpoint_every=100, video_every=every)
    with pytest.raises(ValueError, match=message) as error:
        runner.validate(algo, run, algorithm.make_config())
    assert "\n" not in str(error.value)
    assert headless.flagged(["x", "--video_every", "5000"], "video_every")
    assert not headless.flagged(["x", "--video_every=0", "--eval_every=5"], "video_every")
