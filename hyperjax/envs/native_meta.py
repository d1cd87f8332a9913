"""The paper's MuJoCo meta tasks on MuJoCo's C engine: many envs stepped on the host.

The same tasks as ``envs/meta.py`` builds on MJX with ``physics='gym'`` (``envs/gym_tasks.py``):
Gym's model files (``gym_models.load``), Gym v2's reset noise and ``frame_skip``, the authors'
observations, rewards, terminations, task samplers and oracle contexts (``meta.FAMILIES``), and the
time limit of Brax's ``EpisodeWrapper`` (``done`` and ``truncation`` at step ``episode_length``).
Only the engine differs: MuJoCo's C engine in float64 (``mujoco.mj_step`` on one ``MjData`` per env,
split over ``threads`` Python threads; MuJoCo releases the GIL while it steps) instead of MJX in
float32. Gym's ``get_body_com`` is read as Gym read it (``data.xpos`` after the step, which MuJoCo
computed before the step's last integration stage, as MJX leaves it too). One difference from Gym, shared
with the MJX env: at reset the Ant's free-joint quaternion (``init_qpos`` + U(-0.1, 0.1)) is normalised
before the first observation (MJX's ``forward`` writes it back normalised; Gym's ``set_state`` left it
as drawn until the first step normalised it), so both engines start from the same observation.

API (MAML's host collection, ``train/meta_host.py``, uses it; PEARL's can):

- ``MetaVecEnv(name, num_envs, *, episode_length=None, contact_forces=None, heading_bug=False,
  threads=None)``: ``name`` one of ``FAMILIES``; attributes ``family`` (the ``meta.TaskFamily``),
  ``observation_size``, ``action_size``, ``task_size``, ``episode_length``, ``dt``, ``num_envs``,
  ``model`` (the ``MjModel``; treat as read-only).
- ``reset_state(robot, key) -> (qpos [nq], qvel [nv])``: Gym's reset noise, pure JAX and equal
  to ``GymEnv.reset_data(key)``'s (so one key gives both engines the same start; vmap it over keys).
- ``env.reset(tasks [N, task], qpos [N, nq], qvel [N, nv], envs=None) -> obs [N, obs]``: starts
  episodes (all envs, or those indexed by ``envs`` [K]: then the arrays are ``[K, ...]``).
- ``env.step(actions [N, act]) -> Step(obs, reward, done, truncation)`` each ``[N, ...]``: actions
  in [-1, 1] (clipped here, as MAML's ``_ClipAction``); an env whose episode ended is not stepped
  again until its next ``reset`` (it reports its last obs, reward 0, done 1).

``contact_forces``: ``zero`` (the default, the ``paper`` preset's: what mujoco-py 2.x reported) or
``mujoco`` (``mj_rnePostConstraint`` after the step, as Gymnasium v4+); only the Ant's contact cost
reads them.
"""

import concurrent.futures
import os
from typing import NamedTuple

import jax
import jax.numpy as jnp
import mujoco
import numpy as np

from hyperjax.envs import gym_models, locomotion, meta

# family -> (robot, task kind)
FAMILIES = {
    "halfcheetah_vel": ("halfcheetah", "vel"),
    "halfcheetah_vel_medium": ("halfcheetah", "vel"),
    "halfcheetah_fwd_back": ("halfcheetah", "dir"),
    "ant_vel": ("ant", "vel"),
    "ant_fwd_back": ("ant", "dir"),
}
CONTACT_COST, ANT_CTRL_COST, ANT_SURVIVE, CHEETAH_CTRL_COST = 5e-4, 0.005, 0.05, 0.05


class Step(NamedTuple):
    """One env step of ``N`` envs: ``obs [N, obs]`` float32 (the observation after the step),
    ``reward [N]`` float32, ``done [N]`` float32 (terminal or time-out), ``truncation [N]`` float32
    (time-out only)."""

    obs: np.ndarray
    reward: np.ndarray
    done: np.ndarray
    truncation: np.ndarray


def reset_state(robot: str, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Gym v2's ``reset_model`` noise, ``(qpos [nq], qvel [nv])`` float32, exactly as
    ``gym_models.GymEnv.reset_data(key)`` draws it."""
    model, spec = gym_models.load(robot), gym_models.ROBOTS[robot]
    c = spec.noise
    key_q, key_v = jax.random.split(key)
    qpos = jnp.asarray(model.qpos0, jnp.float32) + jax.random.uniform(key_q, (model.nq,), minval=-c, maxval=c)
    if spec.velocity_noise == "uniform":
        qvel = jax.random.uniform(key_v, (model.nv,), minval=-c, maxval=c)
    else:
        qvel = c * jax.random.normal(key_v, (model.nv,))
    return qpos, qvel


def default_threads() -> int:
    """The cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class MetaVecEnv:
    """``num_envs`` envs of one meta task family on MuJoCo's C engine (host-side, mutable)."""

    def __init__(
        self,
        name: str,
        num_envs: int,
        *,
        episode_length: int | None = None,
        contact_forces: str | None = None,
        heading_bug: bool = False,
        threads: int | None = None,
    ):
        if name not in FAMILIES:
            raise ValueError(f"no native version of meta task {name!r}; valid: {', '.join(FAMILIES)}")
        forces = contact_forces or meta.DEFAULT_CONTACT_FORCES["gym"]
        if forces not in gym_models.CONTACT_FORCES:
            raise ValueError(f"unknown contact_forces {forces!r}; valid: {', '.join(gym_models.CONTACT_FORCES)}")
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.name, self.family = name, meta.FAMILIES[name]
        self.robot, self.kind = FAMILIES[name]
        self.contact_forces, self.heading_bug = forces, heading_bug
        self.model = gym_models.load(self.robot)
        self.frame_skip = gym_models.ROBOTS[self.robot].frame_skip
        self.dt = float(self.model.opt.timestep) * self.frame_skip
        self.episode_length = self.family.default_episode_length if episode_length is None else episode_length
        self.task_size = self.family.task_size
        self.action_size = int(self.model.nu)
        m = self.model  # HalfCheetah: qpos[1:], qvel, torso xpos; Ant: qpos[2:], qvel
        self.observation_size = m.nq - 1 + m.nv + 3 if self.robot == "halfcheetah" else m.nq - 2 + m.nv
        self.torso = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_BODY, "torso")
        self.datas = [mujoco.MjData(self.model) for _ in range(num_envs)]
        n = num_envs
        self.qpos, self.qvel = np.zeros((n, m.nq)), np.zeros((n, m.nv))
        self.xpos = np.zeros((n, 3))  # the torso's, after the last step (or reset)
        self.contact = np.zeros(n)  # sum(clip(cfrc_ext, -1, 1)^2) after the last step
        self.tasks = np.zeros((n, self.task_size))
        self.heading = np.zeros((n, 2))  # direction tasks: the unit heading of each env's task
        self.steps, self.ended = np.zeros(n, np.int64), np.ones(n, bool)
        self.obs = np.zeros((n, self.observation_size), np.float32)
        self.threads = max(1, min(threads or default_threads(), n))
        chunks = np.array_split(np.arange(n), self.threads)
        self._chunks = [c for c in chunks if len(c)]
        self._pool = concurrent.futures.ThreadPoolExecutor(self.threads) if self.threads > 1 else None

    @property
    def num_envs(self) -> int:
        return len(self.datas)

    def _read(self, i: int, d: mujoco.MjData) -> None:
        self.qpos[i], self.qvel[i], self.xpos[i] = d.qpos, d.qvel, d.xpos[self.torso]
        if self.contact_forces == "mujoco":
            mujoco.mj_rnePostConstraint(self.model, d)
            self.contact[i] = np.sum(np.square(np.clip(d.cfrc_ext, -1.0, 1.0)))

    def _observe(self, idx) -> np.ndarray:
        if self.robot == "halfcheetah":
            parts = (self.qpos[idx, 1:], self.qvel[idx], self.xpos[idx])
        else:
            parts = (self.qpos[idx, 2:], self.qvel[idx])
        return np.concatenate(parts, axis=-1).astype(np.float32)

    def reset(self, tasks, qpos, qvel, envs=None) -> np.ndarray:
        """Starts episodes of ``tasks`` from ``(qpos, qvel)`` (Gym's ``set_state``: then ``mj_forward``);
        ``envs``: the indices to reset (default all). Returns the observations of all envs ``[N, obs]``."""
        idx = np.arange(self.num_envs) if envs is None else np.asarray(envs)
        tasks, qpos, qvel = (np.asarray(x, np.float64).reshape(len(idx), -1) for x in (tasks, qpos, qvel))
        for j, i in enumerate(idx):
            d = self.datas[i]
            mujoco.mj_resetData(self.model, d)
            d.qpos[:], d.qvel[:] = qpos[j], qvel[j]
            mujoco.mj_normalizeQuat(self.model, d.qpos)  # as MJX's forward does (the Ant's free joint)
            mujoco.mj_forward(self.model, d)
            self._read(i, d)
        self.tasks[idx], self.steps[idx], self.ended[idx] = tasks, 0, False
        if self.kind == "dir":
            self.heading[idx] = np.asarray(jax.vmap(lambda d: locomotion.xy_heading(d, self.heading_bug))(tasks[:, 0]))
        self.obs[idx] = self._observe(idx)
        return self.obs.copy()

    def _step_chunk(self, idx, actions) -> None:
        m = self.model
        for i in idx:
            d = self.datas[i]
            d.ctrl[:] = actions[i]
            mujoco.mj_step(m, d, nstep=self.frame_skip)
            self._read(i, d)

    def step(self, actions) -> Step:
        """Steps every env whose episode runs with ``actions [N, act]`` (clipped to [-1, 1])."""
        actions = np.clip(np.asarray(actions, np.float64).reshape(self.num_envs, self.action_size), -1.0, 1.0)
        live = np.flatnonzero(~self.ended)
        qpos_before, xpos_before = self.qpos.copy(), self.xpos.copy()
        chunks = [c[~self.ended[c]] for c in self._chunks]
        if self._pool is None:
            self._step_chunk(live, actions)
        else:
            list(self._pool.map(lambda c: self._step_chunk(c, actions), chunks))
        reward, terminated = self._reward(live, actions[live], qpos_before[live], xpos_before[live])
        n = self.num_envs
        out_reward, done, truncation = np.zeros(n, np.float32), np.ones(n, np.float32), np.zeros(n, np.float32)
        self.steps[live] += 1
        timeout = self.steps[live] >= self.episode_length
        out_reward[live] = reward
        done[live] = (terminated | timeout).astype(np.float32)
        truncation[live] = (timeout & ~terminated).astype(np.float32)  # Brax's EpisodeWrapper
        self.ended[live] = done[live] > 0
        self.obs[live] = self._observe(live)
        return Step(self.obs.copy(), out_reward, done, truncation)

    def _reward(self, idx, action, qpos_before, xpos_before) -> tuple[np.ndarray, np.ndarray]:
        """``(reward [K], terminated [K])`` of the envs ``idx`` after their step (``envs/gym_tasks.py``)."""
        task = self.tasks[idx, 0]
        if self.robot == "halfcheetah":
            velocity = (self.qpos[idx, 0] - qpos_before[:, 0]) / self.dt
            run = -np.abs(velocity - task) if self.kind == "vel" else task * velocity
            return run - CHEETAH_CTRL_COST * np.sum(np.square(action), -1), np.zeros(len(idx), bool)
        velocity = (self.xpos[idx] - xpos_before) / self.dt
        if self.kind == "vel":
            forward = -np.abs(velocity[:, 0] - task) + 1.0  # the authors' +1 inside the forward term
        else:
            forward = np.sum(velocity[:, :2] * self.heading[idx], -1)
        contact = CONTACT_COST * self.contact[idx] if self.contact_forces == "mujoco" else 0.0
        reward = forward + ANT_SURVIVE - ANT_CTRL_COST * np.sum(np.square(action), -1) - contact
        qpos, qvel = self.qpos[idx], self.qvel[idx]
        finite = np.isfinite(qpos).all(-1) & np.isfinite(qvel).all(-1)
        healthy = finite & (qpos[:, 2] >= 0.2) & (qpos[:, 2] <= 1.0)
        return reward, ~healthy

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
