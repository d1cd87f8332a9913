"""The paper's MuJoCo tasks on Brax (MJX): the meta-RL locomotion families and the authors' single-task Ant.

Every class here subclasses Brax's own ``Halfcheetah`` / ``Ant`` (same model files, same MJX solver
settings, 5 physics steps per env step) and changes only the observation and the reward, as the
authors' code does (docs/authors_code.md, Environments):

- :class:`HalfCheetahTask`: the task ``state.info['task'] [1]`` is a goal velocity (``kind='vel'``:
  reward ``-|v_x - v_goal| - 0.05 |a|^2``) or a direction (``kind='dir'``: ``d v_x - 0.05 |a|^2``).
  Observation ``qpos[1:], qvel, torso centre of mass`` (20 dims). No termination.
- :class:`AntTask`: goal velocity (``-|v_x - v_goal| + 1 - 0.005 |a|^2 - contact + 0.05``) or
  direction (``<v_xy, heading(d)> - 0.005 |a|^2 - contact + 0.05``). Observation ``qpos[2:], qvel``
  (27). Done when the state is not finite or the torso height leaves [0.2, 1.0].
- :class:`PaperAnt`: the authors' single-task Ant: reward ``v_x + 1 - contact`` (no control cost),
  observation ``qpos[2:], qvel, clip(cfrc_ext, -1, 1)`` (111), the same termination.

``contact`` is ``5e-4 * sum(clip(cfrc_ext, -1, 1)^2)``, the external (contact) forces on every body,
which only MJX computes (``mjx.rne_postconstraint`` after the step), so the Ant classes need
``backend='mjx'``. Brax fuses the Ant's four joint-less hip bodies into the torso (10 bodies, 60
numbers); the authors' Gym model keeps them (14 bodies incl. the world, 84 numbers). The forces are
laid out in the authors' 14 rows, those four rows zero: their geoms, like every Ant geom but the
feet, do not collide in Brax's model, so an unfused model would give exactly these numbers.
``v_x`` (``v_xy``) is the root's displacement over the env step divided by ``dt``.
"""

import functools

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from brax import math as brax_math
from brax.envs import ant, half_cheetah
from brax.envs.base import State
from etils import epath
from mujoco import mjx

CONTACT_CLIP = 1.0


def _check_mjx(cls: type, backend: str) -> None:
    if backend != "mjx":
        raise ValueError(
            f"{cls.__name__} needs contact forces, which only Brax's mjx backend computes; "
            f"got backend={backend!r}, valid: mjx"
        )


@functools.cache
def authors_ant_body_rows() -> tuple[np.ndarray, int]:
    """``(rows, n)``: where each body of Brax's (fused) Ant sits among the ``n`` bodies of the unfused model.

    MuJoCo itself keeps joint-less bodies; Brax's loader fuses them into their parents (in order), so
    the kept bodies are the world and those with a joint.
    """
    path = epath.resource_path("brax") / "envs/assets/ant.xml"
    model = mujoco.MjModel.from_xml_path(str(path))
    rows = [b for b in range(model.nbody) if b == 0 or model.body_jntnum[b] > 0]
    return np.array(rows), model.nbody


def xy_heading(direction: jax.Array, heading_bug: bool) -> jax.Array:
    """Unit heading of a direction task ``d`` in {-1, +1}: +x / -x, or (authors' bug) angle ``d`` radians."""
    if heading_bug:
        return jnp.stack([jnp.cos(direction), jnp.sin(direction)])
    return jnp.stack([direction, jnp.zeros_like(direction)])


class TracedSize:
    """``observation_size`` from the traced shape of ``reset`` (Brax runs MJX's reset eagerly for it:
    about a minute on a 2-core CPU, against seconds to trace). A mixin before a Brax env or wrapper."""

    @property
    def observation_size(self) -> int:
        return jax.eval_shape(self.reset, jax.random.key(0)).obs.shape[-1]


class HalfCheetahTask(TracedSize, half_cheetah.Halfcheetah):
    """Brax's HalfCheetah with a goal-velocity (``kind='vel'``) or direction (``kind='dir'``) task."""

    def __init__(self, kind: str = "vel", backend: str = "mjx", ctrl_cost_weight: float = 0.05, **kwargs):
        if kind not in ("vel", "dir"):
            raise ValueError(f"unknown HalfCheetah task kind {kind!r}; valid: vel, dir")
        super().__init__(ctrl_cost_weight=ctrl_cost_weight, backend=backend, **kwargs)
        self._kind = kind
        torso = mujoco.mj_name2id(self.sys.mj_model, mujoco.mjtObj.mjOBJ_BODY, "torso")
        self._torso = torso - 1  # Brax's link arrays leave out the world body

    def reset(self, rng: jax.Array) -> State:
        state = super().reset(rng)
        return state.replace(info={**state.info, "task": jnp.zeros(1, jnp.float32)})

    def step(self, state: State, action: jax.Array) -> State:
        return self.finish_step(state, self.physics(state.pipeline_state, action), action)

    def physics(self, pipeline_state, action: jax.Array):
        """The step's physics (Brax's 5 MJX steps): the same for every task family of this robot."""
        return self.pipeline_step(pipeline_state, action)

    def finish_step(self, state: State, pipeline_state, action: jax.Array) -> State:
        """The state after ``state`` once :meth:`physics` gave ``pipeline_state``: reward, obs, metrics."""
        ps0, ps = state.pipeline_state, pipeline_state
        x_velocity = (ps.q[0] - ps0.q[0]) / self.dt
        task = state.info["task"][0]
        run = -jnp.abs(x_velocity - task) if self._kind == "vel" else task * x_velocity
        ctrl_cost = self._ctrl_cost_weight * jnp.sum(jnp.square(action))
        state.metrics.update(x_position=ps.q[0], x_velocity=x_velocity, reward_run=run, reward_ctrl=-ctrl_cost)
        return state.replace(pipeline_state=ps, obs=self._get_obs(ps), reward=run - ctrl_cost)

    def torso_com(self, pipeline_state) -> jax.Array:
        """World position of the torso's centre of mass (MuJoCo's ``xipos``, the authors' ``get_body_com``)."""
        pos = pipeline_state.x.pos[self._torso]
        rot = pipeline_state.x.rot[self._torso]
        return pos + brax_math.rotate(self.sys.link.inertia.transform.pos[self._torso], rot)

    def _get_obs(self, pipeline_state) -> jax.Array:
        return jnp.concatenate([pipeline_state.q[1:], pipeline_state.qd, self.torso_com(pipeline_state)])


class _ContactAnt(TracedSize, ant.Ant):
    """Brax's Ant on MJX with the authors' contact cost and termination (finite state, torso z in range)."""

    def __init__(self, backend: str = "mjx", contact_forces: str = "mujoco", **kwargs):
        _check_mjx(type(self), backend)
        if contact_forces not in ("mujoco", "zero"):
            raise ValueError(f"unknown contact_forces {contact_forces!r}; valid: mujoco, zero")
        super().__init__(backend=backend, **kwargs)
        self._contact_forces = contact_forces
        rows, self._num_authors_bodies = authors_ant_body_rows()
        if len(rows) != self.sys.mj_model.nbody:
            raise ValueError(f"Ant body layout changed: {len(rows)} jointed bodies, Brax has {self.sys.mj_model.nbody}")
        self._body_rows = jnp.asarray(rows)

    def step(self, state: State, action: jax.Array) -> State:
        return self.finish_step(state, self.physics(state.pipeline_state, action), action)

    def physics(self, pipeline_state, action: jax.Array):
        """The step's physics (Brax's 5 MJX steps, then the contact forces): the same for every Ant task."""
        return self.with_contact_forces(self.pipeline_step(pipeline_state, action))

    def with_contact_forces(self, pipeline_state):
        """``pipeline_state`` with MJX's external forces per body (``_impl.cfrc_ext``) filled in
        (``contact_forces='zero'``: left as they are, unused)."""
        if self._contact_forces == "zero":
            return pipeline_state
        return mjx.rne_postconstraint(self.sys, pipeline_state)

    def contact_forces(self, pipeline_state) -> jax.Array:
        """``[14, 6]`` clipped external forces in the authors' body layout (fused bodies' rows zero;
        all zero with ``contact_forces='zero'``, as mujoco-py 2.x reported them)."""
        if self._contact_forces == "zero":
            return jnp.zeros((self._num_authors_bodies, 6), jnp.float32)
        cfrc = pipeline_state._impl.cfrc_ext  # noqa: SLF001 - mjx keeps it there (Data.cfrc_ext is deprecated)
        full = jnp.zeros((self._num_authors_bodies, 6), cfrc.dtype).at[self._body_rows].set(cfrc)
        return jnp.clip(full, -CONTACT_CLIP, CONTACT_CLIP)

    def healthy(self, pipeline_state) -> jax.Array:
        """1.0 while the state is finite and the torso height is in the healthy range, else 0.0."""
        min_z, max_z = self._healthy_z_range
        z = pipeline_state.q[2]
        finite = jnp.isfinite(pipeline_state.q).all() & jnp.isfinite(pipeline_state.qd).all()
        return (finite & (z >= min_z) & (z <= max_z)).astype(jnp.float32)

    def _task_reward(self, state: State, velocity: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(forward term, survive bonus)`` of the reward."""
        raise NotImplementedError

    def finish_step(self, state: State, pipeline_state, action: jax.Array) -> State:
        """The state after ``state`` once :meth:`physics` gave ``pipeline_state``: reward, obs, done, metrics."""
        ps0, ps = state.pipeline_state, pipeline_state
        velocity = (ps.q[:3] - ps0.q[:3]) / self.dt
        forward, survive = self._task_reward(state, velocity)
        ctrl_cost = self._ctrl_cost_weight * jnp.sum(jnp.square(action))
        contact_cost = self._contact_cost_weight * jnp.sum(jnp.square(self.contact_forces(ps)))
        healthy = self.healthy(ps)
        state.metrics.update(
            reward_forward=forward,
            reward_survive=survive,
            reward_ctrl=-ctrl_cost,
            reward_contact=-contact_cost,
            x_position=ps.q[0],
            y_position=ps.q[1],
            distance_from_origin=brax_math.safe_norm(ps.q[:3]),
            x_velocity=velocity[0],
            y_velocity=velocity[1],
            forward_reward=forward,
        )
        done = 1.0 - healthy if self._terminate_when_unhealthy else jnp.zeros_like(healthy)
        reward = forward + survive - ctrl_cost - contact_cost
        return state.replace(pipeline_state=ps, obs=self._get_obs(ps), reward=reward, done=done)


class AntTask(_ContactAnt):
    """The authors' meta Ant: goal velocity (``kind='vel'``) or direction (``kind='dir'``), 27-dim observation.

    ``heading_bug=True`` gives the authors' Ant-Fwd-Back, which feeds the direction +-1 to cos/sin
    as an angle in radians (headings of +-57.3 degrees); by default +1 is +x and -1 is -x.
    """

    def __init__(
        self,
        kind: str = "vel",
        backend: str = "mjx",
        heading_bug: bool = False,
        ctrl_cost_weight: float = 0.005,
        survive_bonus: float = 0.05,
        **kwargs,
    ):
        if kind not in ("vel", "dir"):
            raise ValueError(f"unknown Ant task kind {kind!r}; valid: vel, dir")
        super().__init__(backend=backend, ctrl_cost_weight=ctrl_cost_weight, **kwargs)
        self._kind, self._heading_bug, self._survive_bonus = kind, heading_bug, survive_bonus

    def reset(self, rng: jax.Array) -> State:
        state = super().reset(rng)
        return state.replace(info={**state.info, "task": jnp.zeros(1, jnp.float32)})

    def _task_reward(self, state: State, velocity: jax.Array) -> tuple[jax.Array, jax.Array]:
        task = state.info["task"][0]
        if self._kind == "vel":
            forward = -jnp.abs(velocity[0] - task) + 1.0  # the authors' +1 inside the forward term
        else:
            forward = jnp.dot(velocity[:2], xy_heading(task, self._heading_bug))
        return forward, jnp.asarray(self._survive_bonus, jnp.float32)


class PaperAnt(_ContactAnt):
    """The authors' single-task Ant: ``v_x + 1 - contact`` (no control cost), 111-dim observation."""

    def __init__(self, backend: str = "mjx", ctrl_cost_weight: float = 0.0, healthy_reward: float = 1.0, **kwargs):
        super().__init__(backend=backend, ctrl_cost_weight=ctrl_cost_weight, healthy_reward=healthy_reward, **kwargs)

    def reset(self, rng: jax.Array) -> State:
        state = super().reset(rng)
        ps = self.with_contact_forces(state.pipeline_state)
        return state.replace(pipeline_state=ps, obs=self._get_obs(ps))

    def _task_reward(self, state: State, velocity: jax.Array) -> tuple[jax.Array, jax.Array]:
        del state
        return velocity[0], jnp.asarray(self._healthy_reward, jnp.float32)

    def _get_obs(self, pipeline_state) -> jax.Array:
        contact = self.contact_forces(pipeline_state).ravel()
        return jnp.concatenate([pipeline_state.q[2:], pipeline_state.qd, contact])
