"""The paper's MuJoCo tasks on Gym's model files (``physics='gym'``, the ``paper`` preset's), Gym v2 semantics.

Each class is a :class:`gym_models.GymEnv` (Gym's model file, reset noise and ``frame_skip`` on MJX)
with the observation, reward and termination of the env the authors ran (docs/authors_code.md,
Environments; ``v_x`` is the displacement over one env step divided by ``dt``):

- :class:`Hopper` (Gym ``Hopper-v2``): obs ``qpos[1:], clip(qvel, -10, 10)`` (11); reward
  ``v_x + 1 - 1e-3 |a|^2``; done unless finite, ``|s[2:]| < 100`` (s = qpos, qvel), z > 0.7, ``|angle| < 0.2``.
- :class:`Walker2d` (Gym ``Walker2d-v2``): obs as Hopper's (17); the same reward; done unless
  0.8 < z < 2 and -1 < angle < 1.
- :class:`HalfCheetah` (Gym ``HalfCheetah-v2``): obs ``qpos[1:], qvel`` (17); ``v_x - 0.1 |a|^2``; never done.
- :class:`PaperAnt` (``SAC/gym1/envs/ant.py``): obs ``qpos[2:], qvel, clip(cfrc_ext, -1, 1)`` (111);
  ``v_x + 1 - contact`` (no control cost); done unless finite and 0.2 <= z <= 1.
- :class:`HalfCheetahTask` (MAML ``HalfCheetahVelEnv``/``DirEnv``, PEARL's): obs ``qpos[1:], qvel,
  torso xpos`` (20); ``-|v_x - v| - 0.05 |a|^2`` (vel) or ``d v_x - 0.05 |a|^2`` (dir); never done.
- :class:`AntTask` (MAML ``AntVelEnv``/``AntDirEnv``, PEARL's): obs ``qpos[2:], qvel`` (27);
  ``-|v_x - v| + 1 - 0.005 |a|^2 - contact + 0.05`` (vel) or ``<v_xy, heading(d)> - 0.005 |a|^2 -
  contact + 0.05`` (dir); done as PaperAnt.

``contact = 5e-4 sum(clip(cfrc_ext, -1, 1)^2)`` over the 14 bodies (zero with ``contact_forces='zero'``,
the ``paper`` preset's: see ``gym_models``). The Ant's ``v_x`` comes from the torso's ``xpos``
(Gym's ``get_body_com``), the others' from ``qpos[0]``, as in each authors' env. Meta tasks read their
task from ``state.info['task']`` (``meta.with_task``), as ``locomotion``'s Brax-model classes do.
"""

import jax
import jax.numpy as jnp
from brax.envs.base import State

from hyperjax.envs import gym_models, locomotion


def _state(data, obs, info=None, **metrics) -> State:
    zero = jnp.zeros((), jnp.float32)
    metrics = {k: jnp.asarray(v, jnp.float32) for k, v in metrics.items()}
    return State(pipeline_state=data, obs=obs, reward=zero, done=zero, metrics=metrics, info=info or {})


def _finite(data) -> jax.Array:
    return jnp.isfinite(data.qpos).all() & jnp.isfinite(data.qvel).all()


class _Planar(gym_models.GymEnv):
    """Hopper / Walker2d / HalfCheetah single tasks: forward reward from ``qpos[0]``."""

    ctrl_cost_weight = 1e-3
    alive_bonus = 1.0
    clip_velocity = True

    def _get_obs(self, data) -> jax.Array:
        qvel = jnp.clip(data.qvel, -10.0, 10.0) if self.clip_velocity else data.qvel
        return jnp.concatenate([data.qpos[1:], qvel])

    def healthy(self, data) -> jax.Array:
        raise NotImplementedError

    def reset(self, rng: jax.Array) -> State:
        data = self.reset_data(rng)
        return _state(data, self._get_obs(data), reward_forward=0.0, reward_ctrl=0.0, x_velocity=0.0)

    def finish_step(self, state: State, data, action: jax.Array) -> State:
        x_velocity = (data.qpos[0] - state.pipeline_state.qpos[0]) / self.dt
        ctrl = self.ctrl_cost_weight * jnp.sum(jnp.square(action))
        reward = x_velocity + self.alive_bonus - ctrl
        done = 1.0 - self.healthy(data).astype(jnp.float32)
        metrics = {"reward_forward": x_velocity, "reward_ctrl": -ctrl, "x_velocity": x_velocity}
        return state.replace(pipeline_state=data, obs=self._get_obs(data), reward=reward, done=done, metrics=metrics)


class Hopper(_Planar):
    """Gym's ``Hopper-v2``."""

    def __init__(self, **kwargs):
        super().__init__("hopper", **kwargs)

    def healthy(self, data) -> jax.Array:
        s = jnp.concatenate([data.qpos, data.qvel])
        height, angle = data.qpos[1], data.qpos[2]
        return _finite(data) & (jnp.abs(s[2:]) < 100).all() & (height > 0.7) & (jnp.abs(angle) < 0.2)


class Walker2d(_Planar):
    """Gym's ``Walker2d-v2``."""

    def __init__(self, **kwargs):
        super().__init__("walker2d", **kwargs)

    def healthy(self, data) -> jax.Array:
        height, angle = data.qpos[1], data.qpos[2]
        return (height > 0.8) & (height < 2.0) & (angle > -1.0) & (angle < 1.0)


class HalfCheetah(_Planar):
    """Gym's ``HalfCheetah-v2``."""

    ctrl_cost_weight = 0.1
    alive_bonus = 0.0
    clip_velocity = False

    def __init__(self, **kwargs):
        super().__init__("halfcheetah", **kwargs)

    def healthy(self, data) -> jax.Array:
        return jnp.asarray(True)


class HalfCheetahTask(gym_models.GymEnv):
    """The authors' meta HalfCheetah: goal velocity (``kind='vel'``) or direction (``kind='dir'``)."""

    def __init__(self, kind: str = "vel", ctrl_cost_weight: float = 0.05, **kwargs):
        if kind not in ("vel", "dir"):
            raise ValueError(f"unknown HalfCheetah task kind {kind!r}; valid: vel, dir")
        super().__init__("halfcheetah", **kwargs)
        self._kind, self._ctrl_cost_weight = kind, ctrl_cost_weight

    def _get_obs(self, data) -> jax.Array:
        return jnp.concatenate([data.qpos[1:], data.qvel, self.body_xpos(data, "torso")])

    def reset(self, rng: jax.Array) -> State:
        data = self.reset_data(rng)
        info = {"task": jnp.zeros(1, jnp.float32)}
        return _state(data, self._get_obs(data), info, reward_run=0.0, reward_ctrl=0.0, x_velocity=0.0)

    def finish_step(self, state: State, data, action: jax.Array) -> State:
        x_velocity = (data.qpos[0] - state.pipeline_state.qpos[0]) / self.dt
        task = state.info["task"][0]
        run = -jnp.abs(x_velocity - task) if self._kind == "vel" else task * x_velocity
        ctrl = self._ctrl_cost_weight * jnp.sum(jnp.square(action))
        metrics = {"reward_run": run, "reward_ctrl": -ctrl, "x_velocity": x_velocity}
        return state.replace(pipeline_state=data, obs=self._get_obs(data), reward=run - ctrl, metrics=metrics)


class _Ant(gym_models.GymEnv):
    """The authors' Ants: torso-``xpos`` velocity, contact cost, Gym's termination."""

    ctrl_cost_weight = 0.0
    contact_cost_weight = 5e-4

    def __init__(self, **kwargs):
        super().__init__("ant", **kwargs)

    def healthy(self, data) -> jax.Array:
        z = data.qpos[2]
        return _finite(data) & (z >= 0.2) & (z <= 1.0)

    def _task_reward(self, state: State, velocity: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(forward term, survive bonus)``."""
        raise NotImplementedError

    def _info(self) -> dict:
        return {}

    def reset(self, rng: jax.Array) -> State:
        data = self.reset_data(rng)
        metrics = dict(reward_forward=0.0, reward_survive=0.0, reward_ctrl=0.0, reward_contact=0.0)
        return _state(data, self._get_obs(data), self._info(), **metrics, x_velocity=0.0, y_velocity=0.0)

    def finish_step(self, state: State, data, action: jax.Array) -> State:
        before = self.body_xpos(state.pipeline_state, "torso")
        velocity = (self.body_xpos(data, "torso") - before) / self.dt
        forward, survive = self._task_reward(state, velocity)
        ctrl = self.ctrl_cost_weight * jnp.sum(jnp.square(action))
        contact = self.contact_cost_weight * jnp.sum(jnp.square(self.contact_forces(data)))
        done = 1.0 - self.healthy(data).astype(jnp.float32)
        metrics = dict(reward_forward=forward, reward_survive=survive, reward_ctrl=-ctrl, reward_contact=-contact)
        metrics |= dict(x_velocity=velocity[0], y_velocity=velocity[1])
        reward = forward + survive - ctrl - contact
        return state.replace(pipeline_state=data, obs=self._get_obs(data), reward=reward, done=done, metrics=metrics)


class PaperAnt(_Ant):
    """The authors' single-task Ant (``SAC/gym1/envs/ant.py``): ``v_x + 1 - contact``, 111-dim observation."""

    def _task_reward(self, state: State, velocity: jax.Array) -> tuple[jax.Array, jax.Array]:
        return velocity[0], jnp.asarray(1.0, jnp.float32)

    def _get_obs(self, data) -> jax.Array:
        return jnp.concatenate([data.qpos[2:], data.qvel, self.contact_forces(data).ravel()])


class AntTask(_Ant):
    """The authors' meta Ant: goal velocity (``kind='vel'``) or direction (``kind='dir'``), 27-dim observation.

    ``heading_bug=True``: the authors' Ant-Fwd-Back headings (+-1 fed to cos/sin as radians)."""

    ctrl_cost_weight = 0.005

    def __init__(self, kind: str = "vel", heading_bug: bool = False, survive_bonus: float = 0.05, **kwargs):
        if kind not in ("vel", "dir"):
            raise ValueError(f"unknown Ant task kind {kind!r}; valid: vel, dir")
        super().__init__(**kwargs)
        self._kind, self._heading_bug, self._survive_bonus = kind, heading_bug, survive_bonus

    def _info(self) -> dict:
        return {"task": jnp.zeros(1, jnp.float32)}

    def _get_obs(self, data) -> jax.Array:
        return jnp.concatenate([data.qpos[2:], data.qvel])

    def _task_reward(self, state: State, velocity: jax.Array) -> tuple[jax.Array, jax.Array]:
        task = state.info["task"][0]
        if self._kind == "vel":
            forward = -jnp.abs(velocity[0] - task) + 1.0  # the authors' +1 inside the forward term
        else:
            forward = jnp.dot(velocity[:2], locomotion.xy_heading(task, self._heading_bug))
        return forward, jnp.asarray(self._survive_bonus, jnp.float32)


SINGLE_TASK = {"hopper": Hopper, "walker2d": Walker2d, "halfcheetah": HalfCheetah, "ant": PaperAnt}
