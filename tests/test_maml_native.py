"""MAML's meta tasks on MuJoCo's C engine (``envs/native_meta.py``, ``--backend=native``) against the MJX ones.

Default suite (seconds; no MJX physics is compiled):
- every family's observation, reward and termination on C-engine states equal the MJX env's
  (``finish_step`` of ``envs/gym_tasks.py`` run on ``mjx.put_data`` of the same ``MjData``), to float32;
- the start states equal ``GymEnv.reset_data``'s for the same key;
- ``--backend`` resolves and refuses as documented.

Slow (``-m slow``; MJX's programs compile for minutes on a CPU): from the same parameters, tasks and
keys, MJX's and the C engine's rollouts, per robot, and the tolerances they meet:
- **HalfCheetah**: the same start observations (1e-6) and the same rewards over the first 5 steps
  (1e-3; measured 2e-5: float32 against float64), then the episodes part chaotically (measured: 2e-3
  at step 10, O(1) by step 50), so the returns of 32 episodes of 200 steps are compared as
  populations: mean paired difference within 4 standard errors plus 1% of the mean return (measured:
  MJX -312.0, C -324.5, difference 12.4 +- 9.7).
- **Ant**: the same start observations (1e-6); its contacts differ between MJX and the C engine
  (``tests/test_paper_physics.py``'s strict xfail), so the rewards part from the first contact and
  episodes end at different steps (measured: returns of single episodes 0-190 apart); only the mean
  returns are compared, within 4 standard errors of the paired difference plus 10% of the mean
  (measured: MJX -26.1, C -29.9, difference 3.8 +- 8.4): a weak check, as honest as this physics allows.
The two take about 1 and 2 minutes on 2 cores (MJX's compile).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from brax.envs.base import State
from mujoco import mjx

from hyperjax.agents import maml, maml_host
from hyperjax.envs import meta, native_meta, registry
from hyperjax.experiments import runner
from hyperjax.train import meta_host
from hyperjax.train import rollout as rollout_lib
from hyperjax.train import trainer as trainer_lib

# one case per robot and task kind (halfcheetah_vel_medium is halfcheetah_vel's env); the Ant with MuJoCo's
# contact forces (their cost) and the authors' headings
CASES = [
    ("halfcheetah_vel", {}),
    ("halfcheetah_fwd_back", {}),
    ("ant_vel", {"contact_forces": "mujoco"}),
    ("ant_fwd_back", {"heading_bug": True}),
]


def _starts(robot: str, key, num: int):
    return jax.jit(jax.vmap(lambda k: native_meta.reset_state(robot, k)))(jax.random.split(key, num))


def _mjx_task_env(name: str, kwargs: dict):
    env, family = meta.make(name, **kwargs)
    return env.unwrapped, family


@pytest.mark.parametrize("name,kwargs", CASES)
def test_native_steps_equal_the_mjx_task_definitions(name, kwargs):
    """Obs, reward and done of 3 env steps of 4 envs (actions beyond [-1, 1] too) equal the MJX env's
    ``finish_step`` on the same C-engine data, and the reset observation its ``_get_obs``."""
    mjx_env, family = _mjx_task_env(name, kwargs)
    env = native_meta.MetaVecEnv(name, 4, threads=2, **kwargs)
    tasks = np.asarray(family.sample_train(jax.random.key(0), 4))
    starts = _starts(env.robot, jax.random.key(1), 4)
    obs = env.reset(tasks, *starts)
    model, rng = env.model, np.random.default_rng(0)
    for i in range(4):
        np.testing.assert_allclose(obs[i], mjx_env._get_obs(mjx.put_data(model, env.datas[i])), rtol=1e-6, atol=1e-6)
    for _ in range(3):
        before = [mjx.put_data(model, d) for d in env.datas]
        actions, ended = rng.uniform(-1.5, 1.5, (4, env.action_size)), env.ended.copy()
        step = env.step(actions)
        for i in np.flatnonzero(~ended):  # an env whose episode ended is not stepped again
            state = State(before[i], jnp.asarray(obs[i]), 0.0, 0.0, {}, {"task": jnp.asarray(tasks[i], jnp.float32)})
            action = jnp.clip(jnp.asarray(actions[i], jnp.float32), -1.0, 1.0)
            expected = mjx_env.finish_step(state, mjx.put_data(model, env.datas[i]), action)
            np.testing.assert_allclose(step.obs[i], expected.obs, rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(step.reward[i], expected.reward, rtol=1e-5, atol=1e-5)
            assert step.done[i] == float(expected.done), (i, step.done[i], expected.done)
        obs = step.obs
    env.close()


@pytest.mark.parametrize("robot", ["halfcheetah", "ant"])
def test_start_states_equal_the_mjx_envs(robot):
    mjx_env, _ = _mjx_task_env(f"{robot}_vel", {})
    mjx_env.init_data = lambda qpos, qvel: (qpos, qvel)  # reset_data's draw, without MJX's forward
    for seed in range(3):
        qpos, qvel = mjx_env.reset_data(jax.random.key(seed))
        ours = native_meta.reset_state(robot, jax.random.key(seed))
        np.testing.assert_array_equal(ours[0], qpos)
        np.testing.assert_array_equal(ours[1], qvel)


def test_time_limit_and_ended_episodes():
    env = native_meta.MetaVecEnv("halfcheetah_vel", 2, episode_length=3, threads=1)
    starts = _starts("halfcheetah", jax.random.key(0), 2)
    env.reset(np.ones((2, 1)), *starts)
    dones = [env.step(np.zeros((2, 6))) for _ in range(4)]
    assert [d.done.tolist() for d in dones] == [[0, 0], [0, 0], [1, 1], [1, 1]]
    assert dones[2].truncation.tolist() == [1, 1] and dones[3].reward.tolist() == [0, 0]  # not stepped again
    np.testing.assert_array_equal(dones[3].obs, dones[2].obs)


def test_backend_choices():
    assert registry.resolve_backend("halfcheetah_vel", "auto") == (
        "native" if jax.default_backend() == "cpu" else "mjx"
    )
    assert registry.resolve_backend("point_nav", "auto") == "mjx"
    spec = registry.EnvSpec("ant_vel", backend="native")
    assert spec.on_host and "MuJoCo's C engine on the host, Gym's ant.xml" in spec.describe()
    assert spec.make_meta_host(2).observation_size == 27
    assert not registry.EnvSpec("ant_vel").on_host
    with pytest.raises(ValueError, match="backend 'native' steps the MuJoCo meta tasks .*; got env 'ant', valid: "):
        registry.EnvSpec("ant", backend="native").check()
    with pytest.raises(ValueError, match="physics gym\\); got physics 'brax', valid: gym"):
        registry.EnvSpec("halfcheetah_vel", backend="native", physics="brax").check()
    with pytest.raises(ValueError, match="unknown backend 'cuda'; valid: mjx, .*, native, auto"):
        registry.EnvSpec("halfcheetah_vel", backend="cuda").check()
    run = runner.RunConfig(env="halfcheetah_vel", backend="native", total_steps=2, eval_every=1)
    runner.validate("maml", run, maml.MAMLConfig(policy="vanilla", meta_batch=2, fast_batch=2))


def test_maml_trainer_picks_the_native_path():
    config = maml.MAMLConfig(policy="vanilla", meta_batch=2, fast_batch=2, num_test_tasks=2)
    spec = registry.EnvSpec("halfcheetah_vel", backend="native", episode_length=5)
    trainer = maml.make_trainer(config, trainer_lib.Setting(env=spec, num_seeds=2, eval_episodes=2, buffer_size=1))
    assert {"draw", "act", "adapt", "learn"} <= set(trainer.programs) and "run_chunk" not in trainer.programs


def test_a_stop_at_a_heartbeat_leaves_the_state_of_the_last_whole_iteration():
    """Host rollouts beat at every env step; a stop asked for there ends the call with the state of its
    last whole iteration (the interrupted one's state untouched), which trains on as if never stopped."""
    config = maml.MAMLConfig(policy="vanilla", meta_batch=2, fast_batch=2, num_test_tasks=2, hidden_sizes=(8,))
    spec = registry.EnvSpec("halfcheetah_vel", backend="native", episode_length=5)
    trainer = maml_host.make_trainer(config, trainer_lib.Setting(env=spec, num_seeds=1, eval_episodes=2, buffer_size=1))
    init = lambda: trainer.init(jax.random.key(0)[None])  # noqa: E731
    reference, _ = trainer.run_chunk(init(), 0, 2)
    heard = []
    # stop at the 3rd beat of the 2nd iteration (5 beats per rollout, 2 rollouts per iteration)
    trainer.heartbeat.listen(lambda what: heard.append(what) or len(heard) == 13)
    with pytest.raises(trainer_lib.CallStopped) as stopped:
        trainer.run_chunk(init(), 0, 3)
    trainer.heartbeat.listen(None)
    assert heard[0] == "iteration 1: pre-adaptation episodes, env step 0/5", heard[0]
    assert heard[12] == "iteration 2: pre-adaptation episodes, env step 2/5", heard[12]
    cut = stopped.value
    assert cut.steps == 1 and set(cut.metrics) == set(maml.METRICS) | {"finite"}
    resumed, _ = trainer.run_chunk(cut.state, 1, 1)
    for a, b in zip(jax.tree.leaves(resumed), jax.tree.leaves(reference), strict=True):
        np.testing.assert_array_equal(a, b)


# CI-size learning on the native path: HalfCheetah-Vel, 4 tasks x 16 episodes of 20 steps per iteration
# (paper: 40 x 20 x 200), a wider trust region (max_kl 0.5; paper 0.01) and 20 iterations. Measured on
# the 4 test tasks x 16 episodes from one evaluation key (the same start states and noise before and
# after, so a policy that does not learn scores exactly what it scored before): -42.9 after adaptation
# untrained, -37.7 after 20 iterations (pre-adaptation -42.2 -> -38.6). Mutants seen to fail: the inner
# step's sign flipped in maml.adapt, the TRPO objective's sign flipped in maml.make_meta_step.
LEARN = dict(policy="vanilla", meta_batch=4, fast_batch=16, num_train_tasks=20, num_test_tasks=4, max_kl=0.5)


def test_maml_learns_halfcheetah_vel_on_the_c_engine():
    config = maml.MAMLConfig(hidden_sizes=(32, 32), **LEARN)
    spec = registry.EnvSpec("halfcheetah_vel", backend="native", episode_length=20)
    native = maml_host.NativeMAML(config, spec, num_seeds=1, eval_episodes=16)  # evaluation's programs: training's
    state = native.layout.init(native.init_one)[0](jax.random.key(0)[None])
    before = native.adaptation(state, 0)
    for _ in range(20):
        state, metrics = native.iteration(state)
    after = native.adaptation(state, 0)
    native.close()
    print({k: (before[k].mean(), after[k].mean()) for k in before})
    assert before["return"].mean() < -41.5  # the untrained policy (and any that does not learn)
    assert after["return"].mean() > -39.0, (before, after)
    assert after["return"].mean() > after["return_pre"].mean(), after  # one inner step helps (measured +0.9)


# ---- slow: MJX's rollouts against the C engine's, from the same parameters, tasks and keys ----------------


def rollouts_both(name: str, num_tasks: int, episodes: int, length: int):
    """``(mjx, c)`` Trajectories ``[M * E, T, ...]`` of the same vanilla policy, tasks and keys."""
    config = maml.MAMLConfig(policy="vanilla", meta_batch=num_tasks, fast_batch=episodes, hidden_sizes=(32, 32))
    env, family = meta.make(name, episode_length=length)
    task_env = maml._ClipAction(env)
    native = native_meta.MetaVecEnv(name, num_tasks * episodes, episode_length=length)
    policy = maml.make_policy(config, native.observation_size, native.action_size, family.task_size)
    params, programs = policy.init(jax.random.key(0)), maml_host.make_programs(config, native, policy)
    tasks, key = family.sample_train(jax.random.key(1), num_tasks), jax.random.key(2)
    plan = jax.jit(programs.start, static_argnums=4)(params, tasks, tasks, key, episodes)

    @jax.jit
    def on_mjx(params, tasks, key):
        def one(task, context, k):  # as maml.make_functions' one_task (the pre-adaptation episodes)
            weights = policy.task_weights(params, context)
            return maml.collect_episodes(
                meta.with_task(task_env, task), policy, weights, jax.random.split(k)[0], episodes, length
            )

        return jax.vmap(one)(tasks, family.context(tasks, tasks), jax.random.split(key, num_tasks))

    act = jax.jit(programs.act)
    flat = lambda x: np.asarray(x).reshape(num_tasks * episodes, *x.shape[2:])  # noqa: E731

    def policy_call(t, obs):
        return flat(act(plan.weights, obs.reshape(num_tasks, episodes, -1), plan.starts.noise, t))

    tasks_per_env = np.repeat(np.asarray(tasks), episodes, axis=0)
    c = meta_host.run(native, policy_call, tasks_per_env, flat(plan.starts.qpos), flat(plan.starts.qvel), length)
    return jax.tree.map(flat, on_mjx(params, tasks, key)), c


def _paired(mjx_returns, c_returns):
    diff = mjx_returns - c_returns
    return diff.mean(), diff.std(ddof=1) / np.sqrt(len(diff))


@pytest.mark.slow
@pytest.mark.parametrize("name,first_steps,slack", [("halfcheetah_vel", 5, 0.01), ("ant_vel", 0, 0.10)])
def test_mjx_and_c_engine_rollouts_give_the_same_returns(name, first_steps, slack):
    on_mjx, c = rollouts_both(name, num_tasks=2, episodes=16, length=200)
    np.testing.assert_allclose(on_mjx.obs[:, 0], c.obs[:, 0], atol=1e-6)
    if first_steps:
        np.testing.assert_allclose(on_mjx.reward[:, :first_steps], c.reward[:, :first_steps], atol=1e-3)
    mjx_returns = np.asarray(jax.vmap(rollout_lib.episode_return)(on_mjx))
    c_returns = meta_host.episode_returns(c)
    mean, stderr = _paired(mjx_returns, c_returns)
    print(
        f"{name}: MJX {mjx_returns.mean():.2f}, C {c_returns.mean():.2f}, paired difference {mean:.2f} +- {stderr:.2f}"
    )
    assert abs(mean) <= 4 * stderr + slack * abs(c_returns.mean()), (mean, stderr)
