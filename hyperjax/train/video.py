"""Videos of a policy: deterministic episodes, every step's state kept, drawn, captioned, encoded.

``record(env_spec, agent, agent_state, key, path)`` is the whole job (the render entry point and,
later, training's periodic videos call it). Its parts, each usable alone:

- ``rollout_states``: ``episodes`` deterministic episodes (``agent.act``) of an XLA env, each one
  ``lax.scan``, keeping per step only what a frame needs (``Scene.keep``).
- a ``Scene`` per kind of env, the only place that knows how its states look:
  MuJoCo models (Brax/MJX envs: ``qpos``/``qvel`` copied into ``mujoco.MjData``, ``mj_forward``,
  ``mujoco.Renderer`` from the model's tracking camera, else a free camera tracking body 1) and
  the pure-JAX pendulum (``pendulum_frame``, drawn with Pillow). Native Gymnasium envs are stepped
  on the host and drawn by Gymnasium's ``render_mode="rgb_array"`` (``_host_video``; its
  ``Pendulum-v1`` by ``pendulum_frame``, which needs no pygame).
- ``frame_skip``: videos play at the control frequency ``1 / env.dt``, keeping every ``skip``-th
  state where that exceeds ``max_fps``; each episode's last state is always shown.
- ``caption``: episode, step and return so far, drawn on a frame with Pillow.
- ``write``: MP4 (H.264 through imageio's ffmpeg plugin, ``imageio-ffmpeg``) or GIF (Pillow).

MuJoCo renders through OpenGL; without a display ``MUJOCO_GL`` must name a headless backend
before ``mujoco`` is imported (``hyperjax.train.headless.choose``).
"""

import functools
import math
import os
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from hyperjax.envs import native, pendulum, registry
from hyperjax.train import headless

FORMATS = ("mp4", "gif")
# GIF delays are whole centiseconds and GIFs grow with every frame: a lower cap than MP4's
MAX_FPS = {"mp4": 60.0, "gif": 25.0}
WIDTH, HEIGHT = 480, 360
# MuJoCo's default 4096^2 shadow map is most of a frame's cost in software GL (llvmpipe); 1024^2
# looks the same at these sizes and renders 2.4x faster (Ant, 480x360, 2-core CPU: 159 -> 67 ms)
SHADOW_SIZE = 1024
_TRACKING = (1, 2)  # mjtCamLight: mjCAMLIGHT_TRACK, mjCAMLIGHT_TRACKCOM

Frame = np.ndarray  # [H, W, 3] uint8


class RenderError(ValueError):
    """The video cannot be made here (no headless OpenGL, no encoder, a bad size); one line."""


class Recording(NamedTuple):
    """What ``record`` wrote.

    Attributes:
      path: the video file.
      frames: frames written (all episodes).
      fps: frames per second of the video.
      returns: ``[E]`` each episode's undiscounted return.
      lengths: ``[E]`` each episode's steps.
      rollout_seconds: stepping the episodes (XLA envs: the first call compiles the program).
      render_seconds: drawing, captioning and encoding the frames.
    """

    path: str
    frames: int
    fps: float
    returns: np.ndarray
    lengths: np.ndarray
    rollout_seconds: float
    render_seconds: float

    @property
    def video_seconds(self) -> float:
        return self.frames / self.fps


class Scene(NamedTuple):
    """How one env's states become pictures.

    Attributes:
      keep: ``pipeline_state -> pytree`` (traced inside the rollout): what a frame needs of a state.
      draw: ``kept (one step, numpy) -> Frame [H, W, 3] uint8``.
      close: frees the renderer.
    """

    keep: Callable[[Any], Any]
    draw: Callable[[Any], Frame]
    close: Callable[[], None] = lambda: None


# ---- the rollout -------------------------------------------------------------------------------


def rollout_states(env, act, agent_state, key: jax.Array, episodes: int, keep: Callable[[Any], Any] = lambda s: s):
    """Deterministic episodes from ``env.reset``, keeping every state (pure; jit it).

    Args:
      env: a ``brax.envs.base.Env`` with a time limit (``env.episode_length``: Brax's ``EpisodeWrapper``).
      act: ``(agent_state, obs [obs]) -> action [act]`` (``Agent.act``).
      agent_state: what ``act`` reads, for one seed (no seed axis).
      key: split into one reset key per episode.
      episodes: ``E`` (static).
      keep: ``pipeline_state -> pytree``: the part of each state to return.

    Returns:
      ``(kept, reward, done)``: ``kept`` leaves ``[E, T + 1, ...]`` (the reset state, then the
      state after each of the ``T = env.episode_length`` steps), ``reward [E, T]``, ``done [E, T]``.
      Steps after an episode's first ``done`` are simulated but belong to no episode (``episode_lengths``).
    """

    def episode(episode_key):
        def step(state, _):
            state = env.step(state, act(agent_state, state.obs))
            return state, (keep(state.pipeline_state), state.reward, state.done)

        first = env.reset(episode_key)
        _, (kept, reward, done) = jax.lax.scan(step, first, None, env.episode_length)
        kept = jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), keep(first.pipeline_state), kept)
        return kept, reward, done

    # one after another: compiles (and, on a CPU, runs) like one episode; a vmap would batch MJX's
    # solver loops, which run to the slowest episode and compile markedly slower
    return jax.lax.map(episode, jax.random.split(key, episodes))


def episode_lengths(done: np.ndarray) -> np.ndarray:
    """``done [E, T] -> [E]``: steps up to and including each episode's first ``done`` (``T`` if none)."""
    done = np.asarray(done) > 0
    return np.where(done.any(axis=-1), done.argmax(axis=-1) + 1, done.shape[-1])


# ---- frames ------------------------------------------------------------------------------------


def frame_skip(dt: float, max_fps: float) -> tuple[int, float]:
    """``(skip, fps)``: keep every ``skip``-th state so the video plays in real time at ``fps <= max_fps``."""
    control = 1.0 / dt
    skip = max(1, math.ceil(control / max_fps - 1e-9))
    return skip, control / skip


def shown(step: int, skip: int, last: bool) -> bool:
    """Whether the state after ``step`` gets a frame: every ``skip``-th, and an episode's ``last`` one."""
    return step % skip == 0 or last


def frame_steps(length: int, skip: int) -> list[int]:
    """The states of an episode of ``length`` steps that get a frame: ``0, skip, 2 skip, ..., length``."""
    return [t for t in range(length + 1) if shown(t, skip, t == length)]


def pendulum_frame(theta: float, width: int = WIDTH, height: int = HEIGHT) -> Frame:
    """The pendulum at angle ``theta`` (0: upright, counter-clockwise positive, as Gym draws it), ``[H, W, 3]``."""
    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    cx, cy, r = width / 2, height / 2 + height * 0.04, 0.36 * min(width, height)
    thick = max(2, round(0.1 * r))
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=(225, 225, 225), width=max(1, thick // 4))
    tip = (cx - r * math.sin(theta), cy - r * math.cos(theta))
    draw.line(((cx, cy), tip), fill=(204, 77, 77), width=thick)
    for (x, y), radius, color in (((tip), thick / 2, (204, 77, 77)), ((cx, cy), thick * 0.45, (40, 40, 40))):
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=color)
    return np.asarray(image)


def caption(frame: Frame, text: str) -> Frame:
    """``frame`` with ``text`` in white on a dark band at the top, ``[H, W, 3]`` uint8."""
    image = Image.fromarray(frame)
    height = image.height
    size = max(10, height // 22)
    font = _font(size)
    draw = ImageDraw.Draw(image, "RGBA")
    draw.rectangle((0, 0, image.width, int(size * 1.6)), fill=(0, 0, 0, 150))
    draw.text((size // 2, int(size * 0.3)), text, fill=(255, 255, 255), font=font)
    return np.asarray(image)


@functools.cache
def _font(size: int):
    return ImageFont.load_default(size=size)


def _pendulum_state(pipeline_state):
    """The pendulum's angle (its pipeline state is ``[theta, theta_dot]``)."""
    return pipeline_state[0]


def _mujoco_state(pipeline_state):
    """``(qpos, qvel)`` of any Brax pipeline state (MJX ``Data``: ``qpos``; other backends: ``q``)."""
    if hasattr(pipeline_state, "qpos"):
        return pipeline_state.qpos, pipeline_state.qvel
    return pipeline_state.q, pipeline_state.qd


def _renderer(model, width: int, height: int):
    """A ``mujoco.Renderer`` of ``width x height`` (the model's offscreen buffer grown to fit)."""
    import mujoco

    model.vis.global_.offwidth = max(model.vis.global_.offwidth, width)
    model.vis.global_.offheight = max(model.vis.global_.offheight, height)
    model.vis.quality.shadowsize = min(model.vis.quality.shadowsize, SHADOW_SIZE)
    try:
        return mujoco.Renderer(model, height, width)
    except Exception as e:  # GL setup fails as ImportError, RuntimeError or mujoco.FatalError
        raise RenderError(f"{headless.missing_message(os.environ.get('MUJOCO_GL'))} ({str(e).splitlines()[0]})") from e


def mujoco_scene(model, width: int = WIDTH, height: int = HEIGHT) -> Scene:
    """A ``Scene`` of a MuJoCo model (``mujoco.MjModel``; a Brax env's ``sys.mj_model``).

    Camera: the model's first tracking camera (Brax's locomotion models have ``track``), else a
    free camera tracking body 1 (the torso) from MuJoCo's default distance.
    """
    import mujoco

    renderer = _renderer(model, width, height)
    data = mujoco.MjData(model)
    tracking = [i for i in range(model.ncam) if model.cam_mode[i] in _TRACKING]
    if tracking:
        camera = tracking[0]
    else:
        camera = mujoco.MjvCamera()
        mujoco.mjv_defaultFreeCamera(model, camera)
        camera.type = mujoco.mjtCamera.mjCAMERA_TRACKING
        camera.trackbodyid = min(1, model.nbody - 1)

    def draw(kept) -> Frame:
        qpos, qvel = kept
        data.qpos[:], data.qvel[:] = qpos, qvel
        mujoco.mj_forward(model, data)
        renderer.update_scene(data, camera=camera)
        return renderer.render()

    return Scene(keep=_mujoco_state, draw=draw, close=renderer.close)


def scene(env, width: int = WIDTH, height: int = HEIGHT) -> Scene:
    """The ``Scene`` of an XLA env (``EnvSpec.make()``): the pendulum's drawing or its MuJoCo model's.

    Raises RenderError for an env with neither.
    """
    base = env.unwrapped
    if isinstance(base, pendulum.Pendulum):
        return Scene(keep=_pendulum_state, draw=lambda theta: pendulum_frame(float(theta), width, height))
    model = getattr(getattr(base, "sys", None), "mj_model", None)
    if model is None:
        raise RenderError(f"cannot draw {type(base).__name__}: it has no MuJoCo model and no drawing of its own")
    return mujoco_scene(model, width, height)


# ---- writing -----------------------------------------------------------------------------------


def write(path: str, frames: Iterable[Frame], fps: float, fmt: str = "mp4") -> int:
    """Encodes ``frames`` (each ``[H, W, 3]`` uint8, consumed one at a time) to ``path``; returns their count.

    ``mp4``: H.264 (yuv420p, so ``H`` and ``W`` must be even) through imageio's ffmpeg plugin;
    ``gif``: Pillow, looping, ``1000 / fps`` ms per frame (rounded to GIF's centiseconds).
    """
    if fmt not in FORMATS:
        raise RenderError(f"--format={fmt} is not valid; valid: {', '.join(FORMATS)}")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    frames = iter(frames)
    if fmt == "gif":
        count = [1]

        def rest():
            for frame in frames:
                count[0] += 1
                yield Image.fromarray(frame)

        Image.fromarray(next(frames)).save(path, save_all=True, append_images=rest(), duration=1000.0 / fps, loop=0)
        return count[0]
    import imageio.v2 as imageio

    _imageio_ffmpeg()
    count = 0
    with warnings.catch_warnings():  # ffmpeg starts by fork + exec, which JAX warns about needlessly
        warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
        writer = imageio.get_writer(
            path, format="FFMPEG", mode="I", fps=fps, codec="libx264", pixelformat="yuv420p", quality=8,
            macro_block_size=2, ffmpeg_log_level="error",
        )  # fmt: skip
        with writer:
            for frame in frames:
                writer.append_data(frame)
                count += 1
    return count


# ---- the whole job -----------------------------------------------------------------------------


def video_format(path: str | None, fmt: str | None = None) -> str:
    """``fmt``, else ``path``'s extension if it is one of ``FORMATS``, else ``mp4``; RenderError if not valid."""
    if fmt is None and path:
        extension = os.path.splitext(path)[1].lstrip(".").lower()
        fmt = extension if extension in FORMATS else None
    fmt = fmt or "mp4"
    if fmt not in FORMATS:
        raise RenderError(f"--format={fmt} is not valid; valid: {', '.join(FORMATS)}")
    return fmt


def check(episodes: int, width: int, height: int, fmt: str) -> None:
    """RenderError (one line) for settings ``record`` cannot make a video of."""
    video_format(None, fmt)
    if episodes < 1:
        raise RenderError(f"--episodes={episodes} must be >= 1")
    if width < 16 or height < 16:
        raise RenderError(f"--width={width} --height={height}: frames need at least 16 x 16 pixels")
    if fmt == "mp4" and (width % 2 or height % 2):
        raise RenderError(f"--width={width} --height={height}: H.264 (mp4) needs even sizes")
    if fmt == "mp4":
        _imageio_ffmpeg()


def _imageio_ffmpeg():
    """imageio's ffmpeg plugin runs the ffmpeg binary of ``imageio-ffmpeg``; RenderError without it."""
    try:
        import imageio_ffmpeg
    except ImportError as e:
        raise RenderError("--format=mp4 needs imageio-ffmpeg: pip install imageio-ffmpeg (or use --format=gif)") from e
    return imageio_ffmpeg


@functools.lru_cache(maxsize=8)
def _xla_program(env_spec: registry.EnvSpec, act, episodes: int):
    """``(env, jitted (agent_state, key) -> (kept, reward, done))``, built once per argument set (so
    periodic videos during training compile once). Keyed by the agent's ``act`` (the only part used; the
    agent itself holds a dict, ``eval_policies``, so it cannot key a cache)."""
    env = env_spec.make()
    keep = _pendulum_state if isinstance(env.unwrapped, pendulum.Pendulum) else _mujoco_state  # as ``scene``'s
    return env, jax.jit(lambda agent_state, key: rollout_states(env, act, agent_state, key, episodes, keep))


def _xla_video(env_spec, agent, agent_state, key, episodes, width, height, max_fps, log: dict):
    """``(fps, frames)`` of an XLA env: the rollout runs now, the frames are drawn as consumed."""
    env, program = _xla_program(env_spec, agent.act, episodes)
    painter = scene(env, width, height)  # first: no OpenGL fails before minutes of compiling
    t0 = time.perf_counter()
    try:
        kept, reward, done = jax.device_get(program(agent_state, key))
    except BaseException:
        painter.close()
        raise
    lengths = episode_lengths(done)
    returns = np.array([reward[e, :n].sum() for e, n in enumerate(lengths)])
    log.update(lengths=lengths, returns=returns, rollout_seconds=time.perf_counter() - t0)
    skip, fps = frame_skip(float(env.dt), max_fps)

    def frames() -> Iterator[Frame]:
        try:
            for e, n in enumerate(lengths):
                running = np.concatenate([[0.0], np.cumsum(reward[e, :n])])
                for t in frame_steps(int(n), skip):
                    frame = painter.draw(jax.tree.map(lambda x, e=e, t=t: x[e, t], kept))
                    yield caption(frame, _text(e, episodes, t, running[t]))
        finally:
            painter.close()

    return fps, frames()


def _host_video(env_spec, agent, agent_state, key, episodes, width, height, max_fps, log: dict):
    """``(fps, frames)`` of a native Gymnasium env: one env stepped on the host as the frames are consumed."""
    t0 = time.perf_counter()
    is_mujoco = env_spec.name in native.MUJOCO_ENVS
    kwargs = dict(render_mode="rgb_array", width=width, height=height) if is_mujoco else {}
    vec = native.VecEnv(env_spec.name, 1, env_spec.episode_length, env_spec.preset, **kwargs)
    env, act = vec.envs[0], jax.jit(agent.act)
    if is_mujoco:
        env.unwrapped.model.vis.quality.shadowsize = min(env.unwrapped.model.vis.quality.shadowsize, SHADOW_SIZE)
    skip, fps = frame_skip(float(env.unwrapped.dt), max_fps)
    seeds = np.asarray(jax.random.randint(key, (episodes,), 0, 2**31 - 1))
    log["rollout_seconds"] = time.perf_counter() - t0

    def draw() -> Frame:
        if not is_mujoco:
            return pendulum_frame(float(env.unwrapped.state[0]), width, height)
        try:
            return env.render()
        except Exception as e:  # GL setup fails as ImportError, RuntimeError or mujoco.FatalError
            message = headless.missing_message(os.environ.get("MUJOCO_GL"))
            raise RenderError(f"{message} ({str(e).splitlines()[0]})") from e

    def frames() -> Iterator[Frame]:
        returns, lengths = [], []
        try:
            for e in range(episodes):
                obs, _ = env.reset(seed=int(seeds[e]))
                total, t, done = 0.0, 0, False
                yield caption(draw(), _text(e, episodes, 0, 0.0))
                while not done:
                    t1 = time.perf_counter()
                    action = np.asarray(act(agent_state, jnp.asarray(obs, jnp.float32)))
                    obs, reward, terminated, truncated, _ = env.step(vec.rescale(action))
                    total, t, done = total + float(reward), t + 1, terminated or truncated
                    log["rollout_seconds"] += time.perf_counter() - t1
                    if shown(t, skip, last=done):
                        yield caption(draw(), _text(e, episodes, t, total))
                returns.append(total)
                lengths.append(t)
        finally:
            vec.close()
        log.update(returns=np.array(returns), lengths=np.array(lengths))

    return fps, frames()


def _text(episode: int, episodes: int, step: int, ret: float) -> str:
    return f"episode {episode + 1}/{episodes}   step {step}   return {ret:.1f}"


def record(
    env_spec: registry.EnvSpec,
    agent,
    agent_state,
    key: jax.Array,
    path: str,
    episodes: int = 2,
    width: int = WIDTH,
    height: int = HEIGHT,
    fmt: str | None = None,
    max_fps: float | None = None,
) -> Recording:
    """Writes a video of ``episodes`` deterministic episodes of ``agent.act`` on ``env_spec``'s env.

    Args:
      env_spec: the env as a run names it (``runner.env_spec(run_config)``): XLA envs (pure JAX,
        Brax/MJX) are rolled out by one jitted program (cached: later calls with the same
        ``env_spec``, ``agent`` and ``episodes`` reuse it), native envs on the host.
      agent: an ``contract.Agent`` (only ``act`` is used).
      agent_state: what ``act`` reads for one seed (an agent state or its ``snapshot``, no seed axis).
      key: the episodes' start states (one reset key, or Gymnasium seed, per episode).
      path: the video file; its folder is created.
      episodes: ``E``, shown one after another.
      width, height: frame size in pixels.
      fmt: ``mp4`` or ``gif``; None: from ``path``'s extension, else ``mp4``.
      max_fps: frames per second at most (``MAX_FPS[fmt]`` if None); higher control rates skip states.

    Returns:
      The ``Recording`` (path, frame count, fps, returns and lengths ``[E]``, times).

    Raises:
      RenderError: a bad format or size, no headless OpenGL for a MuJoCo env, no MP4 encoder.
    """
    fmt = video_format(path, fmt)
    check(episodes, width, height, fmt)
    max_fps = MAX_FPS[fmt] if max_fps is None else max_fps
    video = _host_video if env_spec.on_host else _xla_video
    log: dict = {}
    t0 = time.perf_counter()
    fps, frames = video(env_spec, agent, agent_state, key, episodes, width, height, max_fps, log)
    count = write(path, frames, fps, fmt)
    return Recording(
        path=path,
        frames=count,
        fps=fps,
        returns=log["returns"],
        lengths=log["lengths"],
        rollout_seconds=log["rollout_seconds"],
        render_seconds=time.perf_counter() - t0 - log["rollout_seconds"],
    )
