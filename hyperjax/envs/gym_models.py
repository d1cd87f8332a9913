"""Gym's MuJoCo model files on MJX: the physics the paper's tasks ran on (``physics='gym'``).

The authors' tasks subclass Gym's MuJoCo envs (``Hopper-v2``, ``Walker2d-v2``, ``HalfCheetah-v2``,
``Ant-v2``), whose model files Gymnasium still ships (``gymnasium/envs/mujoco/assets/``:
``hopper.xml``, ``walker2d.xml`` (the v2-v4 one, not ``walker2d_v5.xml``), ``half_cheetah.xml``,
``ant.xml``). Here each file is loaded as it is (``mujoco.MjModel.from_xml_path``) and put on MJX
(``mjx.put_model``): its integrator (RK4 for Hopper, Walker2d and Ant; Euler for HalfCheetah), its
Newton solver (100 iterations, 50 line-search steps, tolerance 1e-8), every geom its file lets
collide. :class:`GymEnv` is the part of a Gym v2 env that does not depend on the task: Gym's reset
(``init_qpos`` + U(-c, c), ``init_qvel`` + U(-c, c) (Hopper, Walker2d: c = 0.005) or + 0.1 N(0, 1)
(HalfCheetah, Ant: c = 0.1)), ``frame_skip`` MuJoCo steps per env step with ``ctrl = action`` (4 for
Hopper and Walker2d, 5 for HalfCheetah and Ant; every actuator's ctrlrange is [-1, 1], the library's
action range, and MuJoCo clamps ctrl to it as Gym's did), and ``dt = timestep * frame_skip``. The
tasks' observations, rewards and terminations live in ``envs/gym_tasks.py``.

What runs differs from what the authors ran in these documented ways:
- **Engine version.** The authors stepped MuJoCo 2.0 (or 1.50) through mujoco-py; MJX implements
  today's MuJoCo, whose C engine ``tests/test_paper_physics.py`` checks it against (same model file,
  one and ten env steps; mean returns of a fixed policy in the slow tests). ``mjx.put_model`` accepts
  every option these four files set (RK4/Euler, Newton, pyramidal cones, condim 1 and 3, geom margins,
  joint armature, damping, stiffness, limits with their solref/solimp): nothing is dropped or replaced.
  Hopper, Walker2d and HalfCheetah agree with the C engine to float32 rounding (one env step: qvel
  within 1e-4 of C's; ten steps: 0.1 for HalfCheetah, whose contacts amplify it).
- **Ant contacts (measured, unexplained).** On ``ant.xml`` MJX and the C engine agree while no geom
  touches the floor, but not once geoms do: from a state with 3 contacts, one MuJoCo step gives
  velocities 0.08 apart, also with MJX in float64 (collision distances agree to 1e-7; the contact
  and joint-limit forces differ by ~3%). Not the cause, measured over 30 states of a random policy in
  float64 (one MuJoCo step, C against MJX): the geoms' ``margin=0.01`` (set to 0 in both: the same
  errors, up to 0.23 in qvel), the integrator (Euler instead of RK4: the same), friction or solver
  parameters (uniform over the Ant's geoms). States without contacts agree to 1e-7; about a third of
  the states with one or two contacts (capsule or sphere on the plane, pyramidal cone) differ by
  0.01-0.25. The strict xfail in ``tests/test_paper_physics.py`` says so and will flag a fix.
- **Contact forces** (``contact_forces``; they enter only the Ant's tasks: the single-task Ant's
  observation (84 of its 111 numbers) and every Ant task's contact cost). Gym's Ant reads
  ``data.cfrc_ext``, which MuJoCo >= 2.0 computes only in ``mj_rnePostConstraint``, a call mujoco-py
  never made: under mujoco-py 2.x Ant-v2 saw all-zero contact forces (Gymnasium's Ant documentation
  says so). ``'zero'`` reproduces that (the ``paper`` preset's choice: the authors' PEARL code base,
  oyster, installs MuJoCo 2.0 for the Cheetah and Ant tasks, their pycache is Python 3.7's, the
  mujoco-py 2.0 era, and they pinned nothing older); ``'mujoco'`` computes them (``mjx.rne_postconstraint``
  after the step, as Gymnasium v4+ does with ``mj_rnePostConstraint``), what mujoco-py 1.50 reported.

MJX runs the Newton solver to convergence as C does, but a vmapped while loop runs every env until the
slowest converges, and RK4 does four dynamics evaluations per step: on a CPU the Gym models cost 1.5x
(HalfCheetah) to 4x (Ant) Brax's (``benchmarks/results/gym_physics_cpu.md``).
"""

import dataclasses
import functools
import importlib.util
import os
import tempfile
from typing import NamedTuple

import jax
import jax.numpy as jnp
import mujoco
from brax.envs import base
from mujoco import mjx

CONTACT_FORCES = ("mujoco", "zero")


@dataclasses.dataclass(frozen=True)
class Robot:
    """A Gym v2 robot: its model file, MuJoCo steps per env step and reset noise.

    Attributes:
      file: the model file in Gymnasium's ``envs/mujoco/assets``.
      frame_skip: MuJoCo steps per env step.
      noise: ``c``: qpos gets U(-c, c); qvel gets U(-c, c) (``velocity_noise='uniform'``) or c N(0, 1).
      velocity_noise: ``uniform`` or ``normal``.
      gym_env: the Gym env it comes from (for messages and docs).
    """

    file: str
    frame_skip: int
    noise: float
    velocity_noise: str
    gym_env: str


ROBOTS = {
    "hopper": Robot("hopper.xml", 4, 0.005, "uniform", "Hopper-v2"),
    "walker2d": Robot("walker2d.xml", 4, 0.005, "uniform", "Walker2d-v2"),
    "halfcheetah": Robot("half_cheetah.xml", 5, 0.1, "normal", "HalfCheetah-v2"),
    "ant": Robot("ant.xml", 5, 0.1, "normal", "Ant-v2"),
}
INSTALL_HINT = "pip install 'gymnasium[mujoco]' (it ships Gym's model files), or run --physics=brax"


def model_path(robot: str) -> str:
    """Path of ``robot``'s model file in the installed Gymnasium (raises ValueError without it)."""
    spec = importlib.util.find_spec("gymnasium")
    if spec is None or spec.origin is None:
        raise ValueError(f"physics 'gym' loads Gym's model files from Gymnasium: {INSTALL_HINT}")
    return os.path.join(os.path.dirname(spec.origin), "envs", "mujoco", "assets", ROBOTS[robot].file)


@functools.cache
def load(robot: str) -> mujoco.MjModel:
    """``robot``'s Gym model file as MuJoCo compiles it (cached: treat as read-only)."""
    with _CompilerWarningDropped():
        return mujoco.MjModel.from_xml_path(model_path(robot))


class _CompilerWarningDropped:
    """Drops exactly MuJoCo's deprecation warning for ``settotalmass`` (half_cheetah.xml's compiler
    attribute, which MuJoCo still applies) from the C library's stderr; anything else it prints passes."""

    NOISE = b"compiler attribute 'settotalmass' is deprecated"

    def __enter__(self):
        self._saved, self._file = os.dup(2), tempfile.TemporaryFile()
        os.dup2(self._file.fileno(), 2)
        return self

    def __exit__(self, *exc):
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._file.seek(0)
        lines = self._file.read().splitlines(keepends=True)
        self._file.close()
        kept = b"".join(line for line in lines if self.NOISE not in line)
        if kept:
            os.write(2, kept)


class Physics(NamedTuple):
    """An env's model: ``mj_model`` (MuJoCo's, for the C engine and rendering) and ``mjx`` (on device)."""

    mj_model: mujoco.MjModel
    mjx: mjx.Model


class GymEnv(base.Env):
    """The task-independent part of a Gym v2 MuJoCo env on MJX; ``pipeline_state`` is an ``mjx.Data``.

    Subclasses (``envs/gym_tasks.py``) define ``reset``'s observation and ``finish_step``; ``step`` is
    ``finish_step(state, physics(state.pipeline_state, action), action)``, so every task of a robot
    shares the physics program.
    """

    def __init__(self, robot: str, contact_forces: str = "zero"):
        if robot not in ROBOTS:
            raise ValueError(f"no Gym model for {robot!r}; valid: {', '.join(ROBOTS)}")
        if contact_forces not in CONTACT_FORCES:
            raise ValueError(f"unknown contact_forces {contact_forces!r}; valid: {', '.join(CONTACT_FORCES)}")
        self.robot = ROBOTS[robot]
        self.contact_forces_mode = contact_forces
        mj_model = load(robot)
        self.sys = Physics(mj_model, mjx.put_model(mj_model))

    @property
    def dt(self) -> float:
        return float(self.sys.mj_model.opt.timestep) * self.robot.frame_skip

    @property
    def action_size(self) -> int:
        return int(self.sys.mj_model.nu)

    @property
    def observation_size(self) -> int:
        return jax.eval_shape(self.reset, jax.random.key(0)).obs.shape[-1]

    @property
    def backend(self) -> str:
        return "mjx"

    def init_data(self, qpos: jax.Array, qvel: jax.Array) -> mjx.Data:
        """The ``mjx.Data`` at ``qpos [nq]``, ``qvel [nv]`` after ``mjx.forward`` (Gym's ``set_state``)."""
        data = mjx.make_data(self.sys.mjx).replace(qpos=qpos, qvel=qvel)
        return self.with_contact_forces(mjx.forward(self.sys.mjx, data))

    def reset_data(self, rng: jax.Array) -> mjx.Data:
        """Gym's ``reset_model``: ``init_qpos`` + U(-c, c), ``init_qvel`` (zero) + U(-c, c) or c N(0, 1)."""
        model, c = self.sys.mj_model, self.robot.noise
        key_q, key_v = jax.random.split(rng)
        qpos = jnp.asarray(model.qpos0, jnp.float32) + jax.random.uniform(key_q, (model.nq,), minval=-c, maxval=c)
        if self.robot.velocity_noise == "uniform":
            qvel = jax.random.uniform(key_v, (model.nv,), minval=-c, maxval=c)
        else:
            qvel = c * jax.random.normal(key_v, (model.nv,))
        return self.init_data(qpos, qvel)

    def physics(self, data: mjx.Data, action: jax.Array) -> mjx.Data:
        """Gym's ``do_simulation``: ``ctrl = action [nu]``, ``frame_skip`` MuJoCo steps."""
        data = data.replace(ctrl=action)
        data = jax.lax.fori_loop(0, self.robot.frame_skip, lambda _, d: mjx.step(self.sys.mjx, d), data)
        return self.with_contact_forces(data)

    def with_contact_forces(self, data: mjx.Data) -> mjx.Data:
        """``data`` with ``cfrc_ext`` computed (``contact_forces='mujoco'``) or as MJX leaves it (zeros)."""
        if self.contact_forces_mode == "mujoco":
            return mjx.rne_postconstraint(self.sys.mjx, data)
        return data

    def contact_forces(self, data: mjx.Data) -> jax.Array:
        """``[nbody, 6]`` external forces per body clipped to [-1, 1] (Gym's ``clip(cfrc_ext, -1, 1)``)."""
        if self.contact_forces_mode == "zero":
            return jnp.zeros((self.sys.mj_model.nbody, 6), jnp.float32)
        return jnp.clip(data._impl.cfrc_ext, -1.0, 1.0)  # noqa: SLF001 - mjx keeps it there

    def step(self, state: base.State, action: jax.Array) -> base.State:
        return self.finish_step(state, self.physics(state.pipeline_state, action), action)

    def finish_step(self, state: base.State, data: mjx.Data, action: jax.Array) -> base.State:
        """The state after ``state`` once :meth:`physics` gave ``data``: reward, obs, done, metrics."""
        raise NotImplementedError

    def reset(self, rng: jax.Array) -> base.State:
        raise NotImplementedError

    def body_xpos(self, data: mjx.Data, name: str) -> jax.Array:
        """Gym's ``get_body_com(name)``: the body frame's world position ``[3]`` (``xpos``, not the COM).

        After a step it is the one MuJoCo computed before the step's last integration, as in Gym."""
        body = mujoco.mj_name2id(self.sys.mj_model, mujoco.mjtObj.mjOBJ_BODY, name)
        return data.xpos[body]
