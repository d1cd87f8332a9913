"""PEARL on MuJoCo's C engine (``agents/pearl_host.py``, ``--backend=native``).

- Equal results (slow: the MJX program alone compiles for minutes on 2 cores): from the same
  parameters, tasks and key, one collection phase on HalfCheetah-Vel (2 tasks x 2 trajectories of
  20 steps) starts every trajectory in the same state on both engines (bitwise) and gives per-task
  returns within ``RETURN_RTOL`` of the MJX ones. MJX steps in float32, the C engine in float64;
  over 20 steps the returns measured 0.1-0.5% apart (-27.17 vs -27.13, -28.60 vs -28.46); with the
  native policy's noise sign flipped they move 18% (-24.63, -23.32) and the test fails.
- The native trainer (default suite, small): initial collection, one iteration and an evaluation
  run; the step counts are the budgets', the buffers hold them, and the same state gives the same
  iteration twice.
- Learning (slow): the CI-size run of ``test_native_pearl_learns``.
"""

import jax
import numpy as np
import pytest

from hyperjax.agents import pearl, pearl_host
from hyperjax.envs import native_meta, registry
from hyperjax.train import trainer as trainer_lib

RETURN_RTOL = 0.02
T = 20
SMALL = dict(
    model="mlp",
    num_train_tasks=3,
    num_test_tasks=2,
    num_tasks_sample=2,
    num_steps_prior=2 * T,
    num_extra_rl_steps_posterior=2 * T,
    num_initial_steps=T,
    num_train_steps=2,
    meta_batch=2,
    batch_size=4,
    embedding_batch_size=3,
    net_size=16,
    encoder_hidden_sizes=(8,),
    num_steps_per_eval=2 * T,
    num_exp_traj_eval=1,
)


def _spec(backend: str, name: str = "halfcheetah_vel", length: int = T) -> registry.EnvSpec:
    return registry.EnvSpec(name, backend=backend, episode_length=length)


@pytest.mark.slow
def test_native_collection_matches_mjx_on_halfcheetah():
    config = pearl.PEARLConfig(**SMALL)
    setting = trainer_lib.Setting(env=_spec("mjx"), num_seeds=1, eval_episodes=1, buffer_size=400)
    env, family = pearl.make_env(config, setting)
    fns = pearl.make_functions(config, env, family, 400)
    state = jax.jit(fns.init)(jax.random.key(0))
    tasks = state.train_tasks[:2]
    contexts = fns.parts.oracle(tasks, state.train_tasks)
    key, budget = jax.random.key(3), 2 * T
    mjx = jax.jit(lambda p, t, c, k: fns.collect_trajectories(p, t, c, budget, fns.parts.prior_choice, k))(
        state.params, tasks, contexts, key
    )
    native = pearl_host.NativePEARL(config, _spec("native"), 1, 400)
    launch = jax.jit(lambda p, t, c, k: native.progs.launch(p, t, c, k, budget, native.parts.prior_choice))
    first, k_more = launch(state.params, tasks, contexts, key)
    host = native.phase("prior", state.params, tasks, contexts, first, k_more)
    native.close()
    np.testing.assert_array_equal(np.asarray(host.steps), np.asarray(mjx.steps))
    np.testing.assert_array_equal(np.asarray(host.trajectories), np.asarray(mjx.trajectories))
    starts = lambda ph: np.asarray(ph.transitions.obs)[:, ::T]  # noqa: E731 - each trajectory's first obs
    np.testing.assert_allclose(starts(host), starts(mjx), atol=1e-6)
    np.testing.assert_allclose(np.asarray(host.returns), np.asarray(mjx.returns), rtol=RETURN_RTOL)


def _native(config, name="halfcheetah_vel", length=T):
    setting = trainer_lib.Setting(env=_spec("native", name, length), num_seeds=1, eval_episodes=1, buffer_size=400)
    return pearl.make_trainer(config, setting)


def test_native_phase_starts_where_rollout_keys_say_and_meets_its_budget():
    """Cheap: one prior phase on the host (2 tasks x 2 trajectories); each trajectory starts in
    Gym's reset state drawn from the key ``collect_trajectories`` and ``rollout`` give it."""
    config = pearl.PEARLConfig(**SMALL)
    native = pearl_host.NativePEARL(config, _spec("native"), 1, 400)
    state = jax.jit(native.fns.init)(jax.random.key(0))
    tasks = state.train_tasks[:2]
    contexts = native.parts.oracle(tasks, state.train_tasks)
    key, budget = jax.random.key(3), 2 * T
    launch = jax.jit(lambda p, t, c, k: native.progs.launch(p, t, c, k, budget, native.parts.prior_choice))
    first, k_more = launch(state.params, tasks, contexts, key)
    phase = native.phase("prior", state.params, tasks, contexts, first, k_more)
    native.close()
    assert np.asarray(phase.steps).tolist() == [budget, budget]
    assert np.asarray(phase.trajectories).tolist() == [2, 2]
    keys = jax.random.split(jax.random.split(key)[0], (2, 2))
    for m in range(2):
        for k in range(2):
            run_key = jax.random.split(keys[m, k])[1]
            qpos, qvel = native_meta.reset_state("halfcheetah", jax.random.split(run_key)[0])
            obs = np.concatenate([qpos[1:], qvel])
            np.testing.assert_allclose(np.asarray(phase.transitions.obs[m, k * T, :-3]), obs, atol=1e-6)
    assert np.isfinite(np.asarray(phase.returns)).all()


@pytest.mark.slow
def test_native_ant_phase_runs_more_trajectories_until_the_budget():
    """Ant episodes end early under an untrained policy: the host loop launches one more trajectory
    per task (``more``/``add``) until every task has its budget, as the MJX ``while_loop`` does."""
    config = pearl.PEARLConfig(**{**SMALL, "num_steps_prior": 400})
    native = pearl_host.NativePEARL(config, _spec("native", "ant_vel", 200), 1, 1000)
    state = jax.jit(native.fns.init)(jax.random.key(0))
    tasks = state.train_tasks[:2]
    contexts = native.parts.oracle(tasks, state.train_tasks)
    budget = config.num_steps_prior
    launch = jax.jit(lambda p, t, c, k: native.progs.launch(p, t, c, k, budget, native.parts.prior_choice))
    first, k_more = launch(state.params, tasks, contexts, jax.random.key(3))
    phase = native.phase("prior", state.params, tasks, contexts, first, k_more)
    native.close()
    steps, valid = np.asarray(phase.steps), np.asarray(phase.valid)
    assert (steps >= budget).all() and (steps < budget + 200).all(), steps
    np.testing.assert_array_equal(valid.sum(-1), steps)
    assert (np.asarray(phase.trajectories) > 2).all(), phase.trajectories  # more than ceil(400 / 200)
    assert np.isfinite(np.asarray(phase.returns)).all()


@pytest.mark.slow
def test_native_trainer_collects_the_budgets_and_repeats_itself():
    config = pearl.PEARLConfig(**SMALL)
    trainer = _native(config)
    state = trainer.init(jax.random.key(0)[None])
    state, metrics = trainer.run_chunk(state, 0, 1)  # the initial collection, then one iteration
    assert float(metrics["collect_steps"][0]) == 2 * (2 * T + 2 * T)  # HalfCheetah's episodes never end early
    assert bool(metrics["finite"][0])
    assert np.asarray(state.replay.size).sum() == 3 * T + 2 * 4 * T  # initial on 3 tasks + 2 draws' steps
    returns = trainer.evaluate(state, 1)
    assert set(returns) == {"return", "return_prior", "return_train"}
    assert returns["return"].shape == (1, config.num_test_tasks) and np.isfinite(returns["return"]).all()
    copy = jax.jit(lambda s: jax.tree.map(lambda x: x.copy(), s))(state)  # the iteration donates its state
    _, a = trainer.run_chunk(state, 1, 1)
    _, b = trainer.run_chunk(copy, 1, 1)
    for name in ("train_return", "q_loss", "policy_loss"):
        assert float(a[name][0]) == float(b[name][0]), name


# gradient steps enough for several calls of ``train_steps`` (a 1-step probe, then the rest)
STOPPABLE = {**SMALL, "num_train_steps": 6}


@pytest.fixture(scope="module")
def stoppable():
    """A native trainer of ``STOPPABLE`` and its reference: the state and metrics of two uninterrupted
    iterations from ``init()`` (``(trainer, init, reference state, reference metrics)``)."""
    trainer = _native(pearl.PEARLConfig(**STOPPABLE))
    init = lambda: trainer.init(jax.random.key(0)[None])  # noqa: E731
    reference, metrics = trainer.run_chunk(init(), 0, 2)
    return trainer, init, reference, metrics


def _stopped_at(trainer, text, call):
    """``call()`` stopped at the heartbeat ``text``: ``(CallStopped, beats heard)``."""
    heard = []
    trainer.heartbeat.listen(lambda what: heard.append(what) or what == text)
    try:
        with pytest.raises(trainer_lib.CallStopped) as stopped:
            call()
    finally:
        trainer.heartbeat.listen(None)
    return stopped.value, heard


def _assert_same_state(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


def test_a_stop_at_a_heartbeat_leaves_the_state_of_the_last_whole_iteration(stoppable):
    """Host collection beats at every env step; a stop there ends the call with the state of its last
    whole iteration (the interrupted one's untouched), which trains on as if never stopped."""
    trainer, init, reference, _ = stoppable
    cut, heard = _stopped_at(
        trainer, f"iteration 2: prior trajectories, env step 2/{T}", lambda: trainer.run_chunk(init(), 0, 3)
    )
    assert heard[0] == f"initial collection: initial trajectories, env step 0/{T}", heard[0]
    assert "iteration 1: gradient steps 0/6" in heard and "iteration 1: gradient steps 1/6" in heard
    assert cut.steps == 1 and "q_loss" in cut.metrics
    assert int(np.asarray(cut.state.pending)) == 0
    resumed, _ = trainer.run_chunk(cut.state, 1, 1)
    _assert_same_state(resumed, reference)


def test_a_stop_in_the_gradient_steps_keeps_them_and_resumes_where_it_stopped(stoppable):
    """A stop between calls of gradient steps ends the call with the iteration's data stored and the
    steps run so far in the state, the rest pending; the next call runs them with the keys they would
    have had (other call sizes than the uninterrupted run's) and gives its state and metrics."""
    trainer, init, reference, metrics = stoppable
    cut, heard = _stopped_at(trainer, "iteration 2: gradient steps 1/6", lambda: trainer.run_chunk(init(), 0, 2))
    assert heard[-1] == "iteration 2: gradient steps 1/6"
    assert cut.steps == 1 and "q_loss" in cut.metrics  # iteration 1 whole, iteration 2 in progress
    assert int(np.asarray(cut.state.pending)) == 5
    size = lambda state: int(np.asarray(state.replay.size).sum())  # noqa: E731
    assert size(cut.state) == size(reference)  # iteration 2's data stored
    resumed, last = trainer.run_chunk(cut.state, 1, 1)  # probe 1, then 4: the reference ran 1, then 5
    assert int(np.asarray(resumed.pending)) == 0
    _assert_same_state(resumed, reference)  # bitwise: every step the same compiled update
    for name in pearl.METRICS:  # the reference's are means over its two iterations
        both = (np.asarray(cut.metrics[name]) + np.asarray(last[name])) / 2
        np.testing.assert_allclose(both, metrics[name], rtol=1e-5, err_msg=name)


def test_gradient_steps_in_calls_of_any_size_are_trains_scan():
    """``pend_training`` then ``train_steps`` in calls of 1, 2, 0 and 4 steps (one program) give
    ``train``'s state and metrics: step ``i`` uses key ``i`` of the split, whatever the calls."""
    config = pearl.PEARLConfig(**{**SMALL, "num_train_steps": 7})
    native = pearl_host.NativePEARL(config, _spec("native"), 1, 400)
    native.close()
    fns = native.fns

    def filled(key):  # both buffers of every training task hold 30 random transitions
        state = fns.init(key)
        leaves, tree = jax.tree.flatten(state.replay.data)
        keys = jax.random.split(key, len(leaves))
        shape = lambda x: (config.num_train_tasks, 30, *x.shape[2:])  # noqa: E731
        data = jax.tree.unflatten(tree, [jax.random.normal(k, shape(x)) for k, x in zip(keys, leaves, strict=True)])
        tasks, valid = jax.numpy.arange(config.num_train_tasks), jax.numpy.ones((config.num_train_tasks, 30), bool)
        return state.replace(
            replay=pearl.replay_lib.add_to_tasks(state.replay, tasks, data, valid),
            context_replay=pearl.replay_lib.add_to_tasks(state.context_replay, tasks, data, valid),
        )

    copy = jax.jit(lambda s: jax.tree.map(lambda x: x.copy(), s))
    state, key = filled(jax.random.key(0)), jax.random.key(5)
    reference, metrics = jax.jit(fns.train)(copy(state), key)
    stats = {"train_return": 1.5, "collect_steps": 80.0}
    chunked = jax.jit(fns.pend_training)(state, key, stats)
    train_steps = jax.jit(fns.train_steps)
    for count in (1, 2, 0, 4):
        chunked = train_steps(chunked, np.int32(count))
    assert train_steps._cache_size() == 1  # one program for every count
    assert int(chunked.pending) == 0
    for name in ("params", "target_v", "opt_state"):
        _assert_same_state(getattr(chunked, name), getattr(reference, name))  # bitwise, as measured
    got = pearl.iteration_metrics(config, chunked.iteration_sums)
    for name, value in metrics.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-5, err_msg=name)
    assert {k: float(got[k]) for k in stats} == stats


def test_the_mjx_trainer_refuses_a_state_stopped_in_its_gradient_steps():
    """A native run stopped in an iteration's gradient steps resumes on the native path only."""
    setting = trainer_lib.Setting(env=_spec("mjx"), num_seeds=1, eval_episodes=1, buffer_size=400)
    trainer = pearl.make_trainer(pearl.PEARLConfig(**SMALL), setting)
    state = trainer.init(jax.random.key(0)[None])
    assert int(state.pending) == 0
    with pytest.raises(ValueError, match="--backend=native"):
        trainer.run_chunk(state.replace(pending=jax.numpy.int32(3)), 4, 1)


def test_native_backend_is_the_default_on_a_cpu_and_mjx_stays_for_accelerators():
    assert pearl.ALGORITHM.run_defaults["backend"] == "auto"
    expected = "native" if jax.default_backend() == "cpu" else "mjx"
    assert registry.resolve_backend("halfcheetah_vel", "auto") == expected
    assert _spec("native").on_host and not _spec("mjx").on_host
    with pytest.raises(ValueError, match="valid"):
        registry.EnvSpec("point_nav", backend="native").check()


LEARN_T = 50
LEARN = dict(
    model="mlp",
    num_train_tasks=2,
    num_test_tasks=2,
    num_tasks_sample=2,
    num_initial_steps=2 * LEARN_T,
    num_steps_prior=2 * LEARN_T,
    num_extra_rl_steps_posterior=2 * LEARN_T,
    num_train_steps=250,
    meta_batch=2,
    batch_size=128,
    embedding_batch_size=64,
    net_size=64,
    encoder_hidden_sizes=(32, 32),
    num_steps_per_eval=2 * LEARN_T,
    num_exp_traj_eval=1,
    q_lr=1e-3,
    v_lr=1e-3,
    policy_lr=1e-3,
    encoder_lr=1e-3,
)
LEARN_ITERATIONS = 30
# Two goal velocities, 1 and 2 m/s, 50-step episodes: standing still returns -50 and -100 (-75 on
# average), the untrained policy's evaluation about that (-75.8 measured). Trained, the test tasks'
# evaluation return (the deterministic posterior trajectory) measured -53.7 to -68.0 from iteration 10
# on (-63.4 to -68.0 at 20, 25 and 30); with the actor's loss sign flipped it stays below the bar.
LEARN_BAR = -70.0


@pytest.mark.slow
def test_native_pearl_learns():
    """HalfCheetah-Vel on the native path at CI size (2 tasks, 50-step episodes, 30 iterations of
    250 gradient steps): the test tasks' mean evaluation return at iterations 20, 25 and 30 passes
    ``LEARN_BAR``, which standing still (-75) and the untrained policy miss."""
    trainer = _native(pearl.PEARLConfig(**LEARN), length=LEARN_T)
    state = trainer.init(jax.random.key(0)[None])
    tasks = jax.numpy.array([[1.0], [2.0]])
    state = state.replace(train_tasks=tasks, test_tasks=tasks + 0.0)  # distinct buffers (donated)
    untrained = float(trainer.evaluate(state, 0)["return"].mean())
    evaluations = []
    for it in range(LEARN_ITERATIONS):
        state, _ = trainer.run_chunk(state, it, 1)
        if it + 1 in (20, 25, 30):
            evaluations.append(float(trainer.evaluate(state, it + 1)["return"].mean()))
    assert untrained < LEARN_BAR, untrained
    assert np.mean(evaluations) > LEARN_BAR, (untrained, evaluations)


@pytest.mark.slow
def test_native_trainer_runs_several_seeds_at_once():
    """Two seeds: every program vmapped over them, their envs stepped side by side; metrics and
    evaluation returns come back per seed (``[S]``, ``[S, N]``)."""
    config = pearl.PEARLConfig(**SMALL)
    setting = trainer_lib.Setting(env=_spec("native"), num_seeds=2, eval_episodes=1, buffer_size=400)
    trainer = pearl.make_trainer(config, setting)
    state = trainer.init(jax.random.split(jax.random.key(0), 2))
    state, metrics = trainer.run_chunk(state, 0, 1)
    assert np.asarray(metrics["collect_steps"]).tolist() == [8.0 * T, 8.0 * T]
    assert np.asarray(metrics["finite"]).all()
    returns = trainer.evaluate(state, 1)
    assert returns["return"].shape == (2, config.num_test_tasks) and np.isfinite(returns["return"]).all()
    assert not np.array_equal(returns["return"][0], returns["return"][1])  # different seeds, different runs
