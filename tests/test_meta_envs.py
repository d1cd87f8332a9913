"""The paper's MuJoCo meta tasks and the authors' single-task Ant (envs/locomotion.py, envs/meta.py).

MJX programs take 15-30 s each to compile on a 2-core CPU (XLA compiles on one thread), so each robot
has one: a vmapped reset (through ``with_task``) followed by a scan of physics steps (``env.physics``,
the part of ``step`` every family of a robot shares), compiled without XLA's expensive optimisations
(``FAST_COMPILE``: about half the compile time, same maths), the Ant's in a second process while this
one compiles the HalfCheetah's. Each family's reward, obs and done then come from its ``finish_step``
on the same before/after states (``step`` is ``finish_step(state, physics(...))``), checked against
the formulas computed here by hand in numpy.
"""

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from brax.envs import ant as brax_ant

from hyperjax.envs import gym_tasks, locomotion, meta, registry

TASKS = np.array([[0.5], [2.0]], np.float32)
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def _physics_rollout(name: str, steps: int, seed: int):
    """Numpy ``(s0, pipeline states after each step [steps, B, ...], actions [steps, B, A])`` of B envs
    of the family ``name``, env b with task ``TASKS[b]``, random actions."""
    env, _ = meta.make(name, physics="brax")

    @jax.jit(compiler_options=FAST_COMPILE)
    def program(tasks, keys, actions):
        s0 = jax.vmap(lambda task, key: meta.with_task(env, task).reset(key))(tasks, keys)
        physics = jax.vmap(env.unwrapped.physics)
        return s0, jax.lax.scan(lambda ps, a: (physics(ps, a),) * 2, s0.pipeline_state, actions)[1]

    key = jax.random.key(seed)
    actions = jax.random.uniform(key, (steps, len(TASKS), env.action_size), minval=-1, maxval=1)
    out = program(jnp.asarray(TASKS), jax.random.split(key, len(TASKS)), actions)
    return jax.tree.map(np.asarray, (*out, actions))


@pytest.fixture(scope="module")
def rollouts():
    """Both robots' rollouts; the Ant's compiles in a second process at the same time."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        ant = pool.submit(_physics_rollout, "ant_vel", 24, 2)
        return {"halfcheetah_vel": _physics_rollout("halfcheetah_vel", 2, 1), "ant_vel": ant.result()}


def _at(tree, i):
    return jax.tree.map(lambda x: x[i], tree)


def _finish(env, before, after, action, task):
    """``env``'s step result from ``before`` to the physics result ``after``, with ``task`` in the state."""
    before = before.replace(info={**before.info, "task": np.broadcast_to(task, before.info["task"].shape)})
    return jax.jit(jax.vmap(env.unwrapped.finish_step))(before, after, action)


@pytest.fixture(scope="module")
def cheetah(rollouts):
    env, family = meta.make("halfcheetah_vel", physics="brax")
    s0, pss, actions = rollouts["halfcheetah_vel"]
    before = s0.replace(pipeline_state=_at(pss, 0))
    return env, family, s0, before, _at(pss, 1), actions[1]


@pytest.fixture(scope="module")
def ant(rollouts):
    env, family = meta.make("ant_vel", physics="brax")
    s0, pss, actions = rollouts["ant_vel"]
    # a step after which both ants touch the ground (contacts come and go as the random actions kick)
    # with the torso in the healthy range
    touching = (np.abs(pss._impl.cfrc_ext).sum(axis=(2, 3)) > 0).all(axis=1)
    z = pss.q[:, :, 2]
    i = int(np.flatnonzero(touching[1:] & ((z > 0.25) & (z < 0.98)).all(axis=1)[1:])[0]) + 1
    before = s0.replace(pipeline_state=_at(pss, i - 1))
    return env, family, s0, before, _at(pss, i), actions[i]


def _vx(before, after, dt, axis=0):
    return (np.asarray(after.q[:, axis]) - np.asarray(before.pipeline_state.q[:, axis])) / dt


def _ctrl(action):
    return np.sum(np.square(np.asarray(action)), axis=-1)


def _clipped_cfrc(after):
    return np.clip(np.asarray(after._impl.cfrc_ext), -1, 1)  # [B, 10 bodies, 6]


def test_halfcheetah_families_reward_obs_and_task_from_with_task(cheetah):
    env, _, s0, before, after, action = cheetah
    np.testing.assert_array_equal(s0.info["task"], TASKS)  # each env of the vmap has its own task
    dt = env.unwrapped.dt
    np.testing.assert_allclose(dt, 0.05, rtol=1e-6)
    vx = _vx(before, after, dt)
    vel = _finish(env, before, after, action, TASKS)
    np.testing.assert_allclose(vel.reward, -np.abs(vx - TASKS[:, 0]) - 0.05 * _ctrl(action), rtol=1e-5, atol=1e-5)
    other = _finish(env, before, after, action, TASKS + 1.0)
    assert np.all(np.abs(np.asarray(other.reward - vel.reward)) > 1e-3)
    assert vel.obs.shape == (2, 20) and s0.obs.shape == (2, 20) and env.observation_size == 20
    torso = 1  # MuJoCo body id (0 is the world)
    np.testing.assert_allclose(vel.obs[:, -3:], after.xipos[:, torso], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(vel.obs[:, :17], np.concatenate([after.q[:, 1:], after.qd], axis=1), rtol=1e-6)
    assert np.all(np.asarray(vel.done) == 0)

    fwd_back, _ = meta.make("halfcheetah_fwd_back", physics="brax")
    medium, _ = meta.make("halfcheetah_vel_medium", physics="brax")
    assert type(medium.unwrapped) is type(env.unwrapped) and medium.unwrapped._kind == "vel"
    assert fwd_back.unwrapped.sys.opt.timestep == env.unwrapped.sys.opt.timestep  # same physics
    signs = np.array([[1.0], [-1.0]], np.float32)
    fb = _finish(fwd_back, before, after, action, signs)
    np.testing.assert_allclose(fb.reward, signs[:, 0] * vx - 0.05 * _ctrl(action), rtol=1e-5, atol=1e-5)
    flipped = _finish(fwd_back, before, after, action, -signs)
    np.testing.assert_allclose(flipped.reward + fb.reward, -2 * 0.05 * _ctrl(action), rtol=1e-5, atol=1e-5)


def test_ant_families_reward_contact_cost_done_and_heading_bug(ant):
    env, _, s0, before, after, action = ant
    np.testing.assert_array_equal(s0.info["task"], TASKS)
    assert s0.obs.shape == (2, 27) and env.observation_size == 27
    dt = env.unwrapped.dt
    vx, vy = _vx(before, after, dt, 0), _vx(before, after, dt, 1)
    contact = 5e-4 * np.sum(np.square(_clipped_cfrc(after)), axis=(1, 2))
    assert np.all(contact > 0)  # on the ground by now
    vel = _finish(env, before, after, action, TASKS)
    expected = -np.abs(vx - TASKS[:, 0]) + 1.0 - 0.005 * _ctrl(action) - contact + 0.05
    np.testing.assert_allclose(vel.reward, expected, rtol=1e-5, atol=1e-5)
    assert vel.obs.shape == (2, 27) and np.all(np.asarray(vel.done) == 0)
    other = _finish(env, before, after, action, TASKS + 1.0)
    assert np.all(np.abs(np.asarray(other.reward - vel.reward)) > 1e-3)

    signs = np.array([[1.0], [-1.0]], np.float32)
    rest = -0.005 * _ctrl(action) - contact + 0.05
    fwd_back, _ = meta.make("ant_fwd_back", physics="brax")
    fb = _finish(fwd_back, before, after, action, signs)
    np.testing.assert_allclose(fb.reward, signs[:, 0] * vx + rest, rtol=1e-5, atol=1e-5)
    buggy, _ = meta.make("ant_fwd_back", heading_bug=True, physics="brax")
    bug = _finish(buggy, before, after, action, signs)
    d = np.asarray(signs[:, 0])
    np.testing.assert_allclose(bug.reward, np.cos(d) * vx + np.sin(d) * vy + rest, rtol=1e-5, atol=1e-5)
    assert not np.allclose(bug.reward, fb.reward)

    # termination: torso height outside [0.2, 1.0] or a non-finite state
    q = np.asarray(after.q).copy()
    q[0, 2], q[1, 3] = 1.2, np.nan
    done = _finish(env, before, after.replace(q=jnp.asarray(q)), action, TASKS).done
    np.testing.assert_array_equal(done, [1.0, 1.0])


def test_paper_ant_observation_reward_and_contact_forces(ant):
    _, _, _, before, after, action = ant
    paper = registry.make("ant", physics="brax")  # the `paper` task on Brax's model (mjx)
    assert isinstance(paper.unwrapped, locomotion.PaperAnt)
    assert paper.observation_size == 111 and paper.action_size == 8  # from the traced reset: seconds
    out = _finish(paper, before, after, action, TASKS)
    cfrc = _clipped_cfrc(after)
    contact = 5e-4 * np.sum(np.square(cfrc), axis=(1, 2))
    vx = _vx(before, after, paper.unwrapped.dt)
    np.testing.assert_allclose(out.reward, vx + 1.0 - contact, rtol=1e-5, atol=1e-5)  # no control cost
    obs = np.asarray(out.obs)
    assert obs.shape == (2, 111) and np.all(np.isfinite(obs))
    np.testing.assert_allclose(obs[:, :27], np.concatenate([after.q[:, 2:], after.qd], axis=1), rtol=1e-6)
    forces = obs[:, 27:].reshape(2, 14, 6)
    rows, nbody = locomotion.authors_ant_body_rows()
    assert nbody == 14 and list(rows) == [0, 1, 3, 4, 6, 7, 9, 10, 12, 13]  # Brax fuses the 4 hip bodies
    np.testing.assert_allclose(forces[:, rows], cfrc, rtol=1e-6)
    assert np.all(forces[:, [2, 5, 8, 11]] == 0) and np.all(forces[:, 0] == 0)  # fused bodies, world
    assert np.all(np.abs(forces).sum(axis=(1, 2)) > 0)  # feet on the ground


def test_task_distributions_and_contexts():
    key = jax.random.key(3)
    for name in ("halfcheetah_vel", "ant_vel"):
        family = meta.FAMILIES[name]
        for sample in (family.sample_train, family.sample_test):
            tasks = np.asarray(sample(key, 1000))
            assert tasks.shape == (1000, 1) and tasks.min() >= 0 and tasks.max() <= 3 and tasks.max() > 2.9
    medium = meta.FAMILIES["halfcheetah_vel_medium"]
    train, test = np.asarray(medium.sample_train(key, 1000)), np.asarray(medium.sample_test(key, 1000))
    assert train.min() >= 0 and train.max() <= 2.5 and test.min() >= 2.5 and test.max() <= 3
    context = np.asarray(medium.context(jnp.asarray(test), jnp.asarray(train)))
    np.testing.assert_allclose(context, (test - train.min()) / (train.max() - train.min()), rtol=1e-5)
    assert context.min() > 0.99  # test goals beyond the training range
    pool = jnp.array([[0.5], [1.0], [2.5]])
    np.testing.assert_allclose(medium.context(jnp.array([[1.5], [3.0]]), pool), [[0.5], [1.25]], rtol=1e-6)
    for name in ("halfcheetah_fwd_back", "ant_fwd_back"):
        family = meta.FAMILIES[name]
        signs = np.asarray(family.sample_train(key, 1000))
        assert set(np.unique(signs)) == {-1.0, 1.0} and 400 < (signs > 0).sum() < 600
        np.testing.assert_array_equal(
            family.context(jnp.array([[1.0], [-1.0]]), jnp.array([[-2.0], [1.0]])), [[0.5], [-0.5]]
        )
    for name in meta.FAMILIES:
        assert meta.FAMILIES[name].task_size == 1 or name == "point_nav"
        assert meta.FAMILIES[name].default_episode_length == (100 if name == "point_nav" else 200)


def test_registry_knows_the_meta_tasks_and_refuses_contact_tasks_off_mjx():
    assert registry.META_ENVS == tuple(meta.FAMILIES) and set(registry.META_ENVS) <= set(registry.ENVS)
    assert registry.is_meta("ant_vel") and not registry.is_meta("ant")
    assert registry.default_episode_length("halfcheetah_vel") == 200
    assert registry.default_episode_length("point_nav") == 100
    with pytest.raises(ValueError, match=r"^halfcheetah_vel is a meta task: build it with EnvSpec.make_meta\(\)"):
        registry.make("halfcheetah_vel")
    spec = registry.EnvSpec("ant_fwd_back", physics="brax")
    env, family = spec.make_meta(heading_bug=True)
    assert family.name == "ant_fwd_back" and env.unwrapped._heading_bug and env.episode_length == 200
    assert isinstance(env.unwrapped, locomotion.AntTask) and env.unwrapped._contact_forces == "mujoco"  # as before
    assert spec.describe() == "Brax mjx on Brax's ant.xml, contact forces mujoco, meta task"
    gym_env, _ = registry.EnvSpec("ant_fwd_back").make_meta(heading_bug=True)  # the paper preset: Gym's model
    assert isinstance(gym_env.unwrapped, gym_tasks.AntTask) and gym_env.unwrapped._heading_bug
    assert gym_env.unwrapped.contact_forces_mode == "zero" and gym_env.observation_size == 27
    cheetah = registry.EnvSpec("halfcheetah_vel")
    assert cheetah.describe() == "MJX on Gym's half_cheetah.xml (Gym v2 semantics), meta task"
    assert isinstance(cheetah.make_meta()[0].unwrapped, gym_tasks.HalfCheetahTask)
    assert registry.EnvSpec("point_nav").describe() == "pure JAX, meta task"
    assert registry.EnvSpec("halfcheetah_vel", episode_length=50).make_meta()[0].episode_length == 50
    one_line = r"needs contact forces, which only the mjx backend computes; got backend 'spring', valid: mjx"
    for name in ("ant_vel", "ant_fwd_back", "ant"):
        with pytest.raises(ValueError, match=one_line) as error:
            registry.EnvSpec(name, backend="spring", physics="brax").check()
        assert "\n" not in str(error.value)
        with pytest.raises(ValueError, match=r"^physics 'gym' steps Gym's model files on MJX; got backend 'spring'"):
            registry.EnvSpec(name, backend="spring").check()
    with pytest.raises(ValueError, match=r"valid: mjx or env preset 'brax'$"):
        registry.make("ant", backend="spring", physics="brax")
    with pytest.raises(ValueError, match=r"^AntTask needs contact forces, .* valid: mjx$"):
        meta.make("ant_vel", backend="generalized", physics="brax")
    with pytest.raises(ValueError, match=r"^physics 'gym' .* valid: mjx$"):
        meta.make("ant_vel", backend="generalized")
    with pytest.raises(ValueError, match=r"^env preset 'brax' is Brax's own env"):
        registry.EnvSpec("hopper", preset="brax", physics="gym").check()
    with pytest.raises(ValueError, match=r"^physics 'gym' has no model for env 'humanoid'"):
        registry.EnvSpec("humanoid", physics="gym").check()
    with pytest.raises(ValueError, match=r"^unknown physics 'bullet'; valid: gym, brax$"):
        registry.EnvSpec("hopper", physics="bullet").check()
    assert registry.EnvSpec("humanoid").model_kwargs["physics"] == "brax"  # no Gym model here: Brax's
    assert registry.EnvSpec("hopper", preset="brax").model_kwargs["physics"] == "brax"
    assert type(registry.make("ant", backend="spring", preset="brax").unwrapped) is brax_ant.Ant
