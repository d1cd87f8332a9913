"""PEARL: the posterior and its KL against closed forms, where each loss's gradient reaches, per-task
buffers, the paper's sizes, and learning on 2-D point navigation through the runner."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hyperjax import types
from hyperjax.agents import pearl
from hyperjax.agents import registry as algorithms
from hyperjax.envs import meta
from hyperjax.experiments import runner
from hyperjax.nn import pearl as pearl_nets
from hyperjax.train import logger
from hyperjax.train import replay as replay_lib
from hyperjax.train import trainer as trainer_lib

SMALL = dict(
    num_train_tasks=6,
    num_test_tasks=4,
    num_initial_steps=40,
    num_steps_prior=20,
    num_extra_rl_steps_posterior=20,
    num_steps_per_eval=60,
    num_train_steps=4,
    meta_batch=3,
    batch_size=8,
    embedding_batch_size=5,
    net_size=16,
    encoder_hidden_sizes=(16,),
    hyper_widths=(16,),
    hyper_hidden_sizes=(8,),
    num_tasks_sample=2,
)


def test_product_of_gaussians_is_the_closed_form_posterior():
    rng = np.random.default_rng(0)
    mean, var = rng.normal(size=(3, 7, 2)), rng.uniform(0.1, 2.0, size=(3, 7, 2))
    mask = np.ones((3, 7))
    mask[1, 4:] = 0.0  # noqa: E702
    got_mean, got_var = pearl_nets.product_of_gaussians(jnp.asarray(mean), jnp.asarray(var), jnp.asarray(mask))
    for t in range(3):  # N(x; m1, v1) * N(x; m2, v2) * ... normalised: the precision-weighted mean
        used = mask[t] > 0
        precision = 1.0 / var[t, used]
        want_var = 1.0 / precision.sum(0)
        np.testing.assert_allclose(got_var[t], want_var, rtol=1e-5)
        np.testing.assert_allclose(got_mean[t], want_var * (mean[t, used] * precision).sum(0), rtol=1e-5, atol=1e-6)
    # two equal factors halve the variance and keep the mean; a tiny variance is clamped at 1e-7
    m, v = pearl_nets.product_of_gaussians(jnp.array([[0.3], [0.3]]), jnp.array([[0.5], [0.5]]))
    np.testing.assert_allclose([m[0], v[0]], [0.3, 0.25], rtol=1e-6)
    _, v = pearl_nets.product_of_gaussians(jnp.array([[0.0]]), jnp.array([[0.0]]))
    np.testing.assert_allclose(v, [1e-7], rtol=1e-6)


def test_kl_to_the_prior_by_hand():
    mean, var = jnp.array([[0.5, -1.0], [0.0, 2.0]]), jnp.array([[0.25, 1.0], [4.0, 0.5]])
    # KL(N(m, s^2) || N(0, 1)) = log(1/s) + (s^2 + m^2)/2 - 1/2 per dimension, summed over tasks and dims
    by_hand = sum(
        np.log(1 / np.sqrt(v)) + (v + m**2) / 2 - 0.5 for m, v in zip(np.ravel(mean), np.ravel(var), strict=True)
    )
    np.testing.assert_allclose(pearl_nets.kl_to_standard_normal(mean, var), by_hand, rtol=1e-6)


def _data(key, obs=2, act=2, tasks=3, batch=4, ctx_len=5, latent=5):
    ks = jax.random.split(key, 7)
    batch_ = types.Transition(
        obs=jax.random.normal(ks[0], (tasks, batch, obs)),
        action=jnp.tanh(jax.random.normal(ks[1], (tasks, batch, act))),
        reward=jax.random.normal(ks[2], (tasks, batch)),
        discount=jnp.ones((tasks, batch)),
        next_obs=jax.random.normal(ks[3], (tasks, batch, obs)),
    )
    context = jax.random.normal(ks[4], (tasks, ctx_len, obs + act + 1))
    oracle = jnp.zeros((tasks, latent))
    z_noise, action_noise = jax.random.normal(ks[5], (tasks, latent)), jax.random.normal(ks[6], (tasks, batch, act))
    return batch_, context, oracle, z_noise, action_noise


def _norms(tree) -> dict:
    return {name: float(sum(jnp.sum(jnp.abs(x)) for x in jax.tree.leaves(sub))) for name, sub in tree.items()}


@pytest.mark.parametrize("model", pearl_nets.MODELS)
def test_encoder_learns_through_q_and_kl_only(model):
    config = pearl.PEARLConfig(model=model)
    nets = pearl_nets.make_networks(
        model, 2, 2, 5, net_size=16, encoder_hidden_sizes=(16,), hyper_widths=(16,), hyper_hidden_sizes=(8,)
    )
    losses = pearl.make_losses(config, nets)
    params = nets.init(jax.random.key(0))
    data = _data(jax.random.key(1))
    critic = _norms(jax.jit(jax.grad(lambda p: losses.critic(p, p["v"], data)[0]))(params))
    assert critic["encoder"] > 0 and critic["q"] > 0
    assert critic["v"] == 0 and critic["policy"] == 0  # the target V is a separate argument
    actor_value = _norms(jax.jit(jax.grad(lambda p: losses.actor_value(p, data)[0]))(params))
    assert actor_value["encoder"] == 0  # z is detached for the policy and V
    assert actor_value["policy"] > 0 and actor_value["v"] > 0
    # the KL alone reaches the encoder; the TD part alone too (through Q's input z)
    no_kl = pearl.make_losses(pearl.PEARLConfig(model=model, kl_lambda=0.0), nets)
    td_only = _norms(jax.jit(jax.grad(lambda p: no_kl.critic(p, p["v"], data)[0]))(params))
    assert td_only["encoder"] > 0 and not np.isclose(td_only["encoder"], critic["encoder"])


def test_per_task_buffers_never_mix_tasks():
    example = types.Transition(jnp.zeros(1), jnp.zeros(1), jnp.zeros(()), jnp.zeros(()), jnp.zeros(1))
    buffers = replay_lib.init_per_task(num_tasks=4, capacity=6, example=example)

    def tagged(task_ids, count):  # every field holds its task's id
        shape = (len(task_ids), count)
        tag = jnp.broadcast_to(jnp.asarray(task_ids, jnp.float32)[:, None], shape)
        return types.Transition(tag[..., None], tag[..., None], tag, tag, tag[..., None])

    valid = jnp.array([[True, False, True, True, False], [True, True, True, True, True]])
    buffers = replay_lib.add_to_tasks(buffers, jnp.array([1, 3]), tagged([1, 3], 5), valid)
    np.testing.assert_array_equal(buffers.size, [0, 3, 0, 5])
    for _ in range(3):  # wrap around task 3's buffer
        buffers = replay_lib.add_to_tasks(buffers, jnp.array([3, 0]), tagged([3, 0], 5), jnp.ones((2, 5), bool))
    np.testing.assert_array_equal(buffers.size, [6, 3, 0, 6])
    sample = replay_lib.sample_from_tasks(buffers, jax.random.key(0), jnp.array([0, 1, 3, 1]), 50)
    for field in sample:
        np.testing.assert_array_equal(field.reshape(4, 50, -1)[..., 0], np.array([0, 1, 3, 1])[:, None] * np.ones(50))
    cleared = replay_lib.clear_tasks(buffers, jnp.array([3]))
    np.testing.assert_array_equal(cleared.size, [6, 3, 0, 0])


def test_collection_fills_only_the_sampled_tasks_buffers():
    config = pearl.PEARLConfig(model="mlp", **SMALL)
    env, family = meta.make("point_nav", episode_length=20)
    fns = pearl.make_functions(config, env, family, capacity=200)
    state = jax.jit(fns.initial_collection)(fns.init(jax.random.key(0)))
    np.testing.assert_array_equal(state.replay.size, 40)
    np.testing.assert_array_equal(state.context_replay.size, 40)
    # each stored transition's reward is its task's: -|next position - that task's goal|
    distance = np.linalg.norm(state.replay.data.next_obs[:, :40] - state.train_tasks[:, None, :], axis=-1)
    np.testing.assert_allclose(state.replay.data.reward[:, :40], -distance, atol=1e-5)
    collect = jax.jit(fns.collect)
    for seed in range(1, 6):  # two draws with replacement: one task twice, or two tasks once
        after, stats = collect(state, jax.random.key(seed))
        grown = np.asarray(after.replay.size) - 40
        assert grown.sum() == 2 * 40 and set(grown[grown > 0]) <= {40, 80}, grown
        assert float(stats["collect_steps"]) == 2 * 40
        # the drawn tasks' encoder buffers were emptied, then hold one draw's prior phase only
        np.testing.assert_array_equal(np.asarray(after.context_replay.size)[grown > 0], 20)
        np.testing.assert_array_equal(np.asarray(after.context_replay.size)[grown == 0], 40)


@pytest.mark.parametrize("model", pearl_nets.MODELS)
def test_paper_sizes(model):
    """The paper's networks on HalfCheetah-Vel's sizes (obs 20, act 6): shapes and parameter counts."""
    nets = pearl_nets.make_networks(model, 20, 6, 5)
    params = jax.eval_shape(nets.init, jax.random.key(0))
    count = {k: sum(int(np.prod(x.shape)) for x in jax.tree.leaves(v)) for k, v in params.items()}
    assert count["encoder"] == (27 * 200 + 200) + 2 * (200 * 200 + 200) + (200 * 10 + 10)
    if model == "mlp":
        assert count["q"] == 2 * ((31 * 300 + 300) + 2 * (300 * 300 + 300) + 301)
        assert count["policy"] == (25 * 300 + 300) + 2 * (300 * 300 + 300) + 2 * (300 * 6 + 6)
    else:  # a ~5.8M-parameter primary ResNet in each of Q1, Q2, V and the policy, and their heads
        assert (count["q"], count["v"], count["policy"]) == (19_700_228, 8_275_714, 15_116_824)
    obs, act, z = jnp.zeros((7, 20)), jnp.zeros((7, 6)), jnp.zeros((7, 5))
    assert jax.eval_shape(nets.q, params, obs, act, z).shape == (2, 7)
    assert jax.eval_shape(nets.v, params["v"], obs, z).shape == (7,)
    mean, log_std = jax.eval_shape(nets.policy, params, obs, jnp.zeros(5))
    assert mean.shape == log_std.shape == (7, 6)


LEARN = dict(
    num_train_tasks=4,
    num_test_tasks=4,
    num_tasks_sample=2,
    num_initial_steps=100,
    num_steps_prior=40,
    num_extra_rl_steps_posterior=40,
    num_steps_per_eval=60,
    num_train_steps=200,
    meta_batch=4,
    batch_size=64,
    embedding_batch_size=32,
    gamma=0.9,
    q_lr=1e-3,
    v_lr=1e-3,
    policy_lr=1e-3,
    encoder_lr=1e-3,
    kl_lambda=0.01,
    net_size=64,
    encoder_hidden_sizes=(64, 64),
    hyper_widths=(32, 64),
    hyper_hidden_sizes=(32,),
)


def test_bad_settings_are_one_line_errors():
    run = runner.RunConfig(env="point_nav", episode_length=20, total_steps=2, eval_every=1, eval_episodes=1)
    with pytest.raises(ValueError, match="exceeds the 3 trajectories"):
        config = algorithms.get("pearl").config(num_exp_traj_eval=4, num_steps_per_eval=60)
        runner.validate("pearl", run, config)
    with pytest.raises(ValueError, match="not a meta task"):
        runner.validate("pearl", runner.RunConfig(env="pendulum", eval_episodes=1), pearl.PEARLConfig())
    with pytest.raises(ValueError, match="below one collection"):
        runner.validate(
            "pearl", runner.RunConfig(env="point_nav", eval_episodes=1, buffer_size=100), pearl.PEARLConfig()
        )


@pytest.mark.slow  # 45 s on 2 cores; the seed layout is every algorithm's, run by default in test_training.py
def test_trainer_programs_and_seeds():
    config = pearl.PEARLConfig(model="mlp", num_evals=2, **SMALL)
    setting = trainer_lib.Setting(
        env=runner.env_spec(runner.RunConfig(env="point_nav", episode_length=20)),
        num_seeds=2,
        eval_episodes=1,
        buffer_size=200,
    )
    trainer = pearl.make_trainer(config, setting)
    state = trainer.init(jax.vmap(jax.random.key)(jnp.arange(2)))
    state, metrics = trainer.run_chunk(state, 0, 2)
    assert metrics["q_loss"].shape == (2,) and np.all(metrics["finite"])
    assert not np.allclose(*np.asarray(metrics["q_loss"]))  # two seeds, two runs
    np.testing.assert_array_equal(state.replay.size.sum(1), 6 * 40 + 2 * 2 * 40)  # initial + 2 iterations
    evaluation = trainer.evaluate(state, 2)
    assert {k: v.shape for k, v in evaluation.items()} == {
        "return": (2, 4),
        "return_prior": (2, 4),
        "return_train": (2, 4),
    }


def _best_task_agnostic_return(goals: np.ndarray, horizon: int) -> float:
    """An upper bound on the mean return over ``goals`` of any policy that ignores the task: its
    trajectory is the same on every task, and each step costs at least the mean distance from the
    best single point (a grid search) to the goals."""
    grid = np.linspace(-0.5, 0.5, 201)
    points = np.stack(np.meshgrid(grid, grid), -1).reshape(-1, 2)
    return -horizon * np.linalg.norm(points[:, None] - goals[None], axis=-1).mean(1).min()


# Four training goals (PEARL must infer which from the context: a task-agnostic policy scores at
# most about -5.9 on them), 20-step episodes, 30 iterations of 200 gradient steps.
# the hyper model's run is the longest test (~4 min on 2 cores): CI runs the MLP model's, -m slow both
@pytest.mark.parametrize(
    "model", [m if m == "mlp" else pytest.param(m, marks=pytest.mark.slow) for m in pearl_nets.MODELS]
)
def test_learns_point_navigation(tmp_path, model):
    config = pearl.PEARLConfig(model=model, num_evals=2, **LEARN)
    run = runner.RunConfig(
        env="point_nav",
        episode_length=20,
        total_steps=30,
        eval_every=30,
        buffer_size=2000,
        logdir=str(tmp_path),
        checkpoint_every=30,
    )
    result = runner.run("pearl", run, config, verbose=False)
    rows = logger.read_csv(str(tmp_path / "metrics.csv"))
    trained = [float(row["return_train_mean"]) for row in rows]  # the last trajectory, posterior z
    bound = _best_task_agnostic_return(np.asarray(result["state"].train_tasks), horizon=20)
    assert trained[0] < bound, (trained, bound)  # the untrained policy
    assert trained[-1] > bound + 1.0, (trained, bound)  # it tells its tasks apart from the context
    assert result["step"] == 30 and (tmp_path / "curve.png").exists()


# ~45 s on 2 cores; by default PEARLState's round trip through a checkpoint and an exact resume are
# tested on the native path (tests/test_pearl_native.py: stopped mid-iteration, resumed bitwise) and
# the runner's resume on SAC/TD3 (tests/test_training.py)
@pytest.mark.slow
def test_resume_equals_uninterrupted_run(tmp_path):
    """Two iterations, then --resume to three: bitwise the state of three uninterrupted iterations
    (buffers, task pools and keys included; the initial collection is not repeated)."""
    config = pearl.PEARLConfig(model="mlp", **SMALL)

    def run(logdir, total, resume=False):
        run_config = runner.RunConfig(
            env="point_nav", episode_length=20, total_steps=total, eval_every=1, checkpoint_every=1,
            buffer_size=200, logdir=str(tmp_path / logdir), resume=resume,
        )  # fmt: skip
        return runner.run("pearl", run_config, config, verbose=False)["state"]

    run("resumed", 2)
    resumed = run("resumed", 3, resume=True)
    reference = run("reference", 3)
    for a, b in zip(jax.tree.leaves(resumed), jax.tree.leaves(reference), strict=True):
        np.testing.assert_array_equal(a, b)
