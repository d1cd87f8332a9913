"""The ``paper`` preset's physics (``physics='gym'``: Gym's model files on MJX) against MuJoCo's C engine.

Per robot (hopper, walker2d, halfcheetah, ant), one compiled MJX program (the env's ``step`` scanned
over ``T`` steps from given ``(qpos, qvel)``, actions ``clip(u_t + tanh(W obs), -1, 1)``) serves both
checks, and its float64 reference is ``mujoco.mj_step`` on the same ``MjModel`` with Gym v2's
observation, reward and termination written out here again (independently of ``envs/gym_tasks.py``):

- **One and ten steps** from ``N_STATES`` states a random policy visits in the C engine (Gym's reset
  noise, then 0-49 random steps), with random actions (``W = 0``): qpos, qvel, observation and reward
  after steps 1 and 10, done after step 1. Tolerances (``ONE_STEP``, ``TEN_STEPS``): MJX computes in
  float32 (relative rounding 6e-8) and stops its Newton solver when float32 stalls, the C engine in
  float64 to tolerance 1e-8; one env step is 4-5 MuJoCo steps, each an RK4 (or Euler) step with
  contact forces from an iterative solve, so a velocity error of ~1e-5 after one step is float32
  rounding amplified by the contact solve (measured maxima below 2e-5; the tolerance leaves 5x room).
  Over ten steps contacts that open or close a step apart amplify it further (chaos), so ten steps
  get a looser bound: still far below what a wrong model file, frame_skip or timestep gives (those
  move qvel by O(0.1-1) in one step).
- **Returns**: ``N_EPISODES`` episodes of ``T`` steps of a fixed deterministic policy (``W`` fixed,
  ``u = 0``) from Gym's reset distribution (the same starts for both engines); the mean returns must
  agree within 4 standard errors of the paired difference plus 0.5% of the mean return (float32
  divergence over a whole episode is chaotic, so episodes are compared as a population, not
  trajectory by trajectory).

The Ant runs with ``contact_forces='mujoco'`` (the C side calls ``mj_rnePostConstraint`` after the step,
as Gymnasium v4+ does), so its 84 contact-force observations and contact cost are checked too; the
``paper`` preset's ``zero`` is checked by ``test_paper_preset_uses_gym_models_and_zero_contact_forces``.
The four programs compile in two processes (about a minute on two cores).
"""

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

from hyperjax.envs import gym_models, gym_tasks, registry

ROBOTS = ("hopper", "walker2d", "halfcheetah", "ant")
N_STATES = 16  # start states of the one/ten-step test
EPISODE, N_EPISODES = 100, 32  # the return test's episodes (slow)
# max |MJX - C| allowed (absolute, scaled by max(1, |C|)): (qpos, qvel, obs, reward)
ONE_STEP = {"qpos": 1e-4, "qvel": 1e-3, "obs": 1e-3, "reward": 1e-3}
TEN_STEPS = {"qpos": 2e-2, "qvel": 5e-1, "obs": 5e-1, "reward": 5e-1}


def _env(robot: str):
    kwargs = {"contact_forces": "mujoco"} if robot == "ant" else {}
    return gym_tasks.SINGLE_TASK[robot](**kwargs)


# ---- the reference: Gym v2 on MuJoCo's C engine, float64 ------------------------------------------------


def _torso_x(m, d) -> float:
    return float(d.xpos[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "torso")][0])


def gym_obs(robot: str, d) -> np.ndarray:
    """Gym v2's (and the authors' Ant's) observation."""
    if robot in ("hopper", "walker2d"):
        return np.concatenate([d.qpos[1:], np.clip(d.qvel, -10, 10)])
    if robot == "halfcheetah":
        return np.concatenate([d.qpos[1:], d.qvel])
    return np.concatenate([d.qpos[2:], d.qvel, np.clip(d.cfrc_ext, -1, 1).ravel()])


def gym_step(robot: str, m, d, action: np.ndarray) -> tuple[float, bool]:
    """One env step of Gym v2 (``do_simulation`` + the task's reward and done); ``d`` advances."""
    frame_skip = {"hopper": 4, "walker2d": 4, "halfcheetah": 5, "ant": 5}[robot]
    dt = m.opt.timestep * frame_skip
    x_before = _torso_x(m, d) if robot == "ant" else d.qpos[0]
    d.ctrl[:] = action
    for _ in range(frame_skip):
        mujoco.mj_step(m, d)
    if robot == "ant":
        mujoco.mj_rnePostConstraint(m, d)
        contact = 0.5 * 1e-3 * np.sum(np.square(np.clip(d.cfrc_ext, -1, 1)))
        reward = (_torso_x(m, d) - x_before) / dt - contact + 1.0  # the authors' Ant: no control cost
        s = np.concatenate([d.qpos, d.qvel])
        return reward, not (np.isfinite(s).all() and 0.2 <= s[2] <= 1.0)
    v = (d.qpos[0] - x_before) / dt
    if robot == "halfcheetah":
        return v - 0.1 * np.sum(np.square(action)), False
    reward = v + 1.0 - 1e-3 * np.sum(np.square(action))
    height, angle = d.qpos[1], d.qpos[2]
    if robot == "hopper":
        s = np.concatenate([d.qpos, d.qvel])
        ok = np.isfinite(s).all() and (np.abs(s[2:]) < 100).all() and height > 0.7 and abs(angle) < 0.2
    else:
        ok = 0.8 < height < 2.0 and -1.0 < angle < 1.0
    return reward, not ok


def gym_reset(robot: str, m, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Gym v2's ``reset_model`` noise around ``qpos0`` and zero velocity."""
    if robot in ("hopper", "walker2d"):
        return m.qpos0 + rng.uniform(-0.005, 0.005, m.nq), rng.uniform(-0.005, 0.005, m.nv)
    return m.qpos0 + rng.uniform(-0.1, 0.1, m.nq), 0.1 * rng.standard_normal(m.nv)


def c_rollout(robot: str, qpos, qvel, actions, weights) -> dict:
    """The C engine's ``T`` steps from each start, actions ``clip(u_t + tanh(W obs), -1, 1)``: ``[T, B, ...]``."""
    m = gym_models.load(robot)
    d = mujoco.MjData(m)
    out = {k: [] for k in ("qpos", "qvel", "obs", "reward", "done")}
    for b in range(len(qpos)):
        d.qpos[:], d.qvel[:] = qpos[b], qvel[b]
        mujoco.mj_forward(m, d)  # Gym's set_state
        mujoco.mj_rnePostConstraint(m, d)
        rows = {k: [] for k in out}
        for t in range(len(actions)):
            action = np.clip(actions[t, b] + np.tanh(gym_obs(robot, d) @ weights), -1, 1)
            reward, done = gym_step(robot, m, d, action)
            for k, v in zip(out, (d.qpos.copy(), d.qvel.copy(), gym_obs(robot, d), reward, done)):
                rows[k].append(v)
        for k in out:
            out[k].append(np.array(rows[k]))
    return {k: np.stack(v, axis=1) for k, v in out.items()}


def visited_states(robot: str, num: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``num`` states a uniform random policy reaches in the C engine, 0-49 steps after Gym's reset."""
    m = gym_models.load(robot)
    d = mujoco.MjData(m)
    rng = np.random.default_rng(seed)
    qpos, qvel = [], []
    while len(qpos) < num:
        d.qpos[:], d.qvel[:] = gym_reset(robot, m, rng)
        mujoco.mj_forward(m, d)
        done = False
        for _ in range(rng.integers(50)):
            _, done = gym_step(robot, m, d, rng.uniform(-1, 1, m.nu))
            if done:
                break
        if not done:
            qpos.append(d.qpos.copy())
            qvel.append(d.qvel.copy())
    return np.array(qpos), np.array(qvel)


# ---- MJX ------------------------------------------------------------------------------------------------


def mjx_program(env):
    """``(qpos [B, nq], qvel [B, nv], u [T, B, nu], W [obs, nu]) -> [T, B, ...]`` outputs of ``env.step``."""

    def one(qpos, qvel, u, weights):
        state = env.reset(jax.random.key(0))
        data = env.init_data(qpos, qvel)
        state = state.replace(pipeline_state=data, obs=env._get_obs(data))

        def step(state, u_t):
            action = jnp.clip(u_t + jnp.tanh(state.obs @ weights), -1.0, 1.0)
            state = env.step(state, action)
            ps = state.pipeline_state
            return state, {
                "qpos": ps.qpos,
                "qvel": ps.qvel,
                "obs": state.obs,
                "reward": state.reward,
                "done": state.done,
            }

        return jax.lax.scan(step, state, u)[1]

    batched = jax.vmap(one, in_axes=(0, 0, 1, None), out_axes=1)
    return jax.jit(batched)


def compare(robot: str, what: str) -> dict:
    """MJX's and C's outputs (numpy) for ``robot`` (runs in a worker process): ``what`` is ``steps``
    (``N_STATES`` visited states, 10 random steps) or ``episodes`` (``N_EPISODES`` x ``EPISODE`` steps
    of the fixed policy)."""
    env = _env(robot)
    m = gym_models.load(robot)
    program = mjx_program(env)
    rng = np.random.default_rng(ROBOTS.index(robot))
    obs_size = env.observation_size
    f32 = lambda *a: [jnp.asarray(x, jnp.float32) for x in a]  # noqa: E731
    if what == "steps":
        qpos, qvel = visited_states(robot, N_STATES, seed=10 + ROBOTS.index(robot))
        u, weights = rng.uniform(-1, 1, (10, N_STATES, m.nu)), np.zeros((obs_size, m.nu))
    else:
        starts = [gym_reset(robot, m, rng) for _ in range(N_EPISODES)]
        qpos, qvel = np.array([s[0] for s in starts]), np.array([s[1] for s in starts])
        u = np.zeros((EPISODE, N_EPISODES, m.nu))
        weights = rng.normal(0, 0.5 / np.sqrt(obs_size), (obs_size, m.nu))
    mjx_out = jax.tree.map(np.asarray, program(*f32(qpos, qvel, u, weights)))
    return {"mjx": mjx_out, "c": c_rollout(robot, qpos, qvel, u, weights)}


def episode_returns(out: dict) -> np.ndarray:
    """``[B]`` sums of rewards up to and including each episode's first done."""
    done = out["done"].astype(bool)
    alive = np.cumsum(done, axis=0) - done == 0  # steps before or at the first done
    return np.sum(np.where(alive, out["reward"], 0.0), axis=0)


def _in_workers(what: str, robots) -> dict:
    """The robots' numbers, two robots at a time (MJX compiles on one thread)."""
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {robot: pool.submit(compare, robot, what) for robot in robots}
        return {robot: f.result() for robot, f in futures.items()}


def _selected_robots(request, test_name: str) -> list[str]:
    """The robots of ``test_name``'s selected cases (the default suite leaves the `slow` ones out)."""
    items = request.session.items
    return sorted({i.callspec.params["robot"] for i in items if getattr(i, "originalname", "") == test_name})


@pytest.fixture(scope="module")
def steps(request):
    return _in_workers("steps", _selected_robots(request, "test_one_and_ten_steps_match_the_c_engine"))


@pytest.fixture(scope="module")
def episodes(request):
    return _in_workers("episodes", _selected_robots(request, "test_mean_return_of_a_fixed_policy_matches_the_c_engine"))


def max_error(mjx_out, c_out, key, step) -> float:
    a, b = np.asarray(mjx_out[key][step], np.float64), np.asarray(c_out[key][step], np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b))))


def step_errors(r: dict) -> dict:
    """``{(key, steps): max scaled error}`` after 1 and 10 steps (starts that ended before step 10 left out)."""
    errors = {}
    ok = ~np.any(r["c"]["done"][:10].astype(bool), axis=0)
    for key in ONE_STEP:
        errors[key, 1] = max_error(r["mjx"], r["c"], key, 0)
        sub = {k: v[:, ok] for k, v in r["mjx"].items()}, {k: v[:, ok] for k, v in r["c"].items()}
        errors[key, 10] = max_error(*sub, key, 9)
    return errors


# Measured (see the report in envs/gym_models.py): MJX and the C engine differ on Gym's ant.xml once its
# geoms touch the floor, even with MJX in float64 (qvel 0.08 apart after one MuJoCo step from a state with
# 3 contacts; collision distances agree to 1e-7, the contact and joint-limit forces differ by ~3%).
ANT_CONTACTS = pytest.mark.xfail(strict=True, reason="MJX's contact solution on Gym's ant.xml differs from C's")


# Hopper (RK4) by default; HalfCheetah (Euler), Walker2d (RK4, as Hopper) and the Ant (its known contact
# difference) with -m slow, ~25-30 s of compiling each on 2 cores (by default HalfCheetah's task
# definitions and start states are compared with MJX's in tests/test_maml_native.py, not its steps)
@pytest.mark.parametrize(
    "robot", ["hopper", pytest.param("halfcheetah", marks=pytest.mark.slow),
              pytest.param("walker2d", marks=pytest.mark.slow),
              pytest.param("ant", marks=[ANT_CONTACTS, pytest.mark.slow])],
)  # fmt: skip
def test_one_and_ten_steps_match_the_c_engine(steps, robot):
    r = steps[robot]
    errors = step_errors(r)
    print(robot, {f"{k}@{n}": f"{e:.1e}" for (k, n), e in errors.items()})
    for key, tol in ONE_STEP.items():
        assert errors[key, 1] < tol, (robot, key, 1, errors[key, 1])
    for key, tol in TEN_STEPS.items():
        assert errors[key, 10] < tol, (robot, key, 10, errors[key, 10])
    np.testing.assert_array_equal(r["mjx"]["done"][0].astype(bool), r["c"]["done"][0])


@pytest.mark.slow
@pytest.mark.parametrize("robot", ROBOTS)
def test_mean_return_of_a_fixed_policy_matches_the_c_engine(episodes, robot):
    r = episodes[robot]
    mjx_returns, c_returns = episode_returns(r["mjx"]), episode_returns(r["c"])
    diff = mjx_returns - c_returns
    stderr = np.std(diff, ddof=1) / np.sqrt(len(diff))
    print(
        f"{robot}: MJX {mjx_returns.mean():.3f} +- {mjx_returns.std(ddof=1) / np.sqrt(len(diff)):.3f}, "
        f"C {c_returns.mean():.3f} +- {c_returns.std(ddof=1) / np.sqrt(len(diff)):.3f}, "
        f"paired difference {diff.mean():.4f} +- {stderr:.4f}"
    )
    assert abs(diff.mean()) <= 4 * stderr + 5e-3 * abs(c_returns.mean()), (robot, diff.mean(), stderr)


def test_paper_preset_uses_gym_models_and_zero_contact_forces():
    spec = registry.EnvSpec("ant")
    assert spec.model_kwargs == {"physics": "gym", "contact_forces": "zero"}
    assert spec.describe() == "MJX on Gym's ant.xml (Gym v2 semantics, contact forces zero)"
    env = spec.make().unwrapped
    assert isinstance(env, gym_tasks.PaperAnt) and env.sys.mj_model.nbody == 14
    np.testing.assert_array_equal(env.contact_forces(None), np.zeros((14, 6)))  # mujoco-py 2.x's cfrc_ext
    for robot, (file, frame_skip) in {
        "hopper": ("hopper.xml", 4),
        "walker2d": ("walker2d.xml", 4),
        "halfcheetah": ("half_cheetah.xml", 5),
        "ant": ("ant.xml", 5),
    }.items():
        env = registry.make(robot).unwrapped
        assert gym_models.model_path(robot).endswith("gymnasium/envs/mujoco/assets/" + file)
        assert env.robot.frame_skip == frame_skip and env.sys.mj_model.opt.integrator == (
            mujoco.mjtIntegrator.mjINT_EULER if robot == "halfcheetah" else mujoco.mjtIntegrator.mjINT_RK4
        )
        assert env.sys.mjx.opt.iterations == 100 and env.sys.mj_model.opt.solver == mujoco.mjtSolver.mjSOL_NEWTON
