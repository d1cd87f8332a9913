"""PEARL's algorithm against hand computations: the Q target (reward scale, discount, target V, KL
weight), V and the policy on the freshly updated Q, the authors' learning rates per model, the
prior-then-posterior switch in collection and evaluation, whole trajectories until a step budget,
the per-environment configs, and the ``authors_task_counts`` preset running. Tiny networks, point
navigation or a count-down env; every compiled function is built once per module."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from brax.envs import base as brax_base
from brax.envs.wrappers import training as brax_wrappers

from hyperjax import types
from hyperjax.agents import pearl
from hyperjax.agents import registry as algorithms
from hyperjax.envs import meta
from hyperjax.experiments import runner
from hyperjax.nn import pearl as pearl_nets
from hyperjax.train import trainer as trainer_lib

TINY = dict(
    num_train_tasks=3,
    num_test_tasks=2,
    num_initial_steps=20,
    num_tasks_sample=1,
    num_steps_prior=20,
    num_extra_rl_steps_posterior=60,
    num_steps_per_eval=60,
    num_exp_traj_eval=2,
    num_train_steps=1,
    meta_batch=2,
    batch_size=4,
    embedding_batch_size=3,
    net_size=8,
    encoder_hidden_sizes=(8,),
    hyper_widths=(8,),
    hyper_hidden_sizes=(4,),
    num_evals=1,
)


def _data(key, obs=2, act=2, tasks=2, batch=4, ctx_len=3, latent=5):
    ks = jax.random.split(key, 7)
    batch_ = types.Transition(
        obs=jax.random.normal(ks[0], (tasks, batch, obs)),
        action=jnp.tanh(jax.random.normal(ks[1], (tasks, batch, act))),
        reward=jax.random.normal(ks[2], (tasks, batch)),
        discount=jnp.tile(jnp.array([1.0, 0.0, 1.0, 1.0]), (tasks, batch // 4)),  # a terminal per 4
        next_obs=jax.random.normal(ks[3], (tasks, batch, obs)),
    )
    context = jax.random.normal(ks[4], (tasks, ctx_len, obs + act + 1))
    return (
        batch_,
        context,
        jnp.zeros((tasks, latent)),
        jax.random.normal(ks[5], (tasks, latent)),
        (jax.random.normal(ks[6], (tasks, batch, act))),
    )


def _posterior(nets, params, context, z_noise):
    """By hand: the product of the encoder's Gaussian factors (variances clamped at 1e-7), a sample."""
    mean, var = (np.asarray(x, np.float64) for x in jax.jit(nets.encode)(params, context))
    precision = 1.0 / np.maximum(var, 1e-7)
    post_var = 1.0 / precision.sum(-2)
    post_mean = post_var * (mean * precision).sum(-2)
    return post_mean, post_var, post_mean + np.sqrt(post_var) * np.asarray(z_noise)


def _per_transition(z, batch):
    return np.repeat(z, batch, axis=0)


def _small_nets(model="mlp", latent=5):
    return pearl_nets.make_networks(
        model, 2, 2, latent, net_size=8, encoder_hidden_sizes=(8,), hyper_widths=(8,), hyper_hidden_sizes=(4,)
    )


def test_q_target_reward_scale_discount_target_v_and_kl_weight_by_hand():
    config = pearl.PEARLConfig(model="mlp", reward_scale=3.0, gamma=0.8, kl_lambda=0.37)
    nets = _small_nets()
    params = nets.init(jax.random.key(0))
    target_v = nets.init(jax.random.key(1))["v"]  # a target V that is not V, with values far from V's
    target_v = {"params": {**target_v["params"], "Dense_0": {**target_v["params"]["Dense_0"], "bias": jnp.ones(1)}}}
    data = _data(jax.random.key(2))
    batch, context, _, z_noise, _ = data
    loss, aux = jax.jit(pearl.make_losses(config, nets).critic)(params, target_v, data)

    post_mean, post_var, z = _posterior(nets, params, context, z_noise)
    zb = jnp.asarray(_per_transition(z, 4), jnp.float32)
    flat = lambda x: jnp.asarray(x).reshape(8, -1)  # noqa: E731
    outputs = jax.jit(lambda p, tv: (nets.q(p, flat(batch.obs), flat(batch.action), zb),) + tuple(
        nets.v(v, flat(batch.next_obs), zb) for v in (tv, p["v"])
    ))  # fmt: skip
    q, next_v, wrong_v = (np.asarray(x, np.float64) for x in outputs(params, target_v))  # [2, 8], [8], [8]
    reward, discount = np.ravel(batch.reward), np.ravel(batch.discount)
    target = 3.0 * reward + 0.8 * discount * next_v  # Q target = scale * r + gamma * (1 - done) * V'(s', z)
    td = ((q - target) ** 2).mean(-1).sum()  # mean over transitions, summed over the twin Qs
    kl = 0.5 * np.sum(post_var + post_mean**2 - 1.0 - np.log(post_var))  # KL(q || N(0, I)), summed over tasks
    np.testing.assert_allclose(float(aux["q_loss"]), td, rtol=1e-4)
    np.testing.assert_allclose(float(aux["kl"]), kl, rtol=1e-4)
    np.testing.assert_allclose(float(loss), td + 0.37 * kl, rtol=1e-4)
    # the check can tell: the value with V instead of the target V, or without the discount, differs
    assert abs(((q - (3.0 * reward + 0.8 * discount * wrong_v)) ** 2).mean(-1).sum() - td) > 1e-3 * td
    assert abs(((q - (3.0 * reward + 0.8 * next_v)) ** 2).mean(-1).sum() - td) > 1e-3 * td


@functools.cache
def _point_nav_functions(model: str, **overrides):
    config = pearl.PEARLConfig(model=model, **{**TINY, **overrides})
    env, family = meta.make("point_nav", episode_length=20)
    return pearl.make_functions(config, env, family, capacity=400)


def test_v_and_policy_use_the_updated_q():
    fns = _point_nav_functions("mlp", q_lr=0.05)  # a large Q step: the stale and fresh Q differ
    nets = _small_nets()
    state = fns.init(jax.random.key(0))
    params = state.params
    data = _data(jax.random.key(3))
    batch, context, _, z_noise, action_noise = data
    new, _, _, metrics = jax.jit(fns.update)(params, state.target_v, state.opt_state, data)

    _, _, z = _posterior(nets, params, context, z_noise)  # the encoder before its step
    z = jnp.asarray(z, jnp.float32)
    mean, log_std = jax.vmap(nets.policy, (None, 0, 0))(params, batch.obs, z)  # the policy before its step
    mean, log_std = np.asarray(mean, np.float64), np.asarray(log_std, np.float64)
    pre = mean + np.exp(log_std) * np.asarray(action_noise)
    action = np.tanh(pre)
    gauss = -0.5 * np.asarray(action_noise) ** 2 - log_std - 0.5 * np.log(2 * np.pi)
    log_pi = (gauss - np.log(1 - action**2 + 1e-6)).sum(-1).ravel()  # tanh-Gaussian log-probability
    zb = jnp.asarray(_per_transition(np.asarray(z), 4))
    obs, act = jnp.reshape(batch.obs, (8, 2)), jnp.asarray(action.reshape(8, 2), jnp.float32)
    v = np.asarray(nets.v(params["v"], obs, zb), np.float64)
    reg = 1e-3 * ((mean**2).mean() + (log_std**2).mean())

    def losses(q_params):
        min_q = np.asarray(nets.q({"q": q_params}, obs, act, zb), np.float64).min(0)
        return ((v - (min_q - log_pi)) ** 2).mean(), (log_pi - min_q).mean() + reg

    fresh, stale = losses(new["q"]), losses(params["q"])
    assert abs(fresh[0] - stale[0]) > 0.05 * fresh[0] and abs(fresh[1] - stale[1]) > 0.05 * abs(fresh[1])
    np.testing.assert_allclose(float(metrics["v_loss"]), fresh[0], rtol=2e-3)
    np.testing.assert_allclose(float(metrics["policy_loss"]), fresh[1], rtol=2e-3, atol=1e-4)


# the authors' rates (PEARL/torch/sac/sac.py: hyper -> hyper_lr for Q and V, 1e-4 for the policy;
# mlp -> configs/default.py's qf_lr, vf_lr, policy_lr; context_lr 3e-4 for both)
AUTHORS_RATES = {
    "mlp": {"q": 3e-4, "v": 3e-4, "policy": 3e-4, "encoder": 3e-4},
    "hyper": {"q": 5e-5, "v": 5e-5, "policy": 1e-4, "encoder": 3e-4},
}


@pytest.mark.parametrize("model", pearl_nets.MODELS)
def test_learning_rates_per_model_reach_adam(model):
    assert pearl.learning_rates(pearl.PEARLConfig(model=model)) == AUTHORS_RATES[model]
    fns = _point_nav_functions(model)
    state = fns.init(jax.random.key(0))
    new, _, _, _ = jax.jit(fns.update)(state.params, state.target_v, state.opt_state, _data(jax.random.key(4)))
    # Adam's first step moves every parameter with a gradient by lr * g / (|g| + eps): at most lr
    for name, lr in AUTHORS_RATES[model].items():
        moved = max(
            float(jnp.max(jnp.abs(a - b))) for a, b in zip(*map(jax.tree.leaves, (new[name], state.params[name])))
        )
        np.testing.assert_allclose(moved, lr, rtol=1e-2, err_msg=name)


M_POSTERIOR = 4.0  # every encoder factor says z = 4 with variance ~0: the posterior is z = 4


def _probe_params(params):
    """The encoder says ``z = 4`` whatever the context; the policy's mean is ``z[0]`` in both
    action dims with std ~0 (so an action is tanh(z[0])): a trajectory's actions show its ``z``."""
    zero = jax.tree.map(jnp.zeros_like, params)
    enc = zero["encoder"]["params"]
    enc["Dense_0"]["bias"] = jnp.concatenate([jnp.full(5, M_POSTERIOR), jnp.full(5, -30.0)])
    pol = zero["policy"]["params"]
    pol["Dense_0"]["kernel"] = pol["Dense_0"]["kernel"].at[2, 0].set(1.0)  # input (obs[2], z[5]): z[0]
    pol["Dense_0"]["bias"] = pol["Dense_0"]["bias"].at[0].set(20.0)  # relu(z0 + 20)
    for layer in ("Dense_1", "Dense_2"):
        pol[layer]["kernel"] = pol[layer]["kernel"].at[0, 0].set(1.0)
    pol["mean"]["kernel"] = pol["mean"]["kernel"].at[0].set(1.0)
    pol["mean"]["bias"] = jnp.full(2, -20.0)  # mean = z0
    pol["log_std"]["bias"] = jnp.full(2, -20.0)
    return {**params, "encoder": zero["encoder"], "policy": zero["policy"]}


def _is_posterior(actions):
    return np.allclose(actions, np.tanh(M_POSTERIOR), atol=1e-4)


def test_prior_then_posterior_in_collection():
    fns = _point_nav_functions("mlp")
    state = fns.init(jax.random.key(0))
    state = state.replace(params=_probe_params(state.params))
    collect = jax.jit(fns.collect)
    for seed in range(3):
        after, _ = collect(state, jax.random.key(seed))
        task = int(np.flatnonzero(np.asarray(after.replay.size))[0])
        actions = np.asarray(after.replay.data.action[task, :80]).reshape(4, 20, 2)  # prior, 3 posterior
        kinds = [_is_posterior(a) for a in actions]
        # the prior phase from the prior; the posterior phase's first trajectory too (clear_z)
        assert kinds == [False, False, True, True], kinds
        for a in actions:  # z is drawn once per trajectory
            np.testing.assert_allclose(a, np.broadcast_to(a[0], a.shape), atol=1e-5)
        assert not np.allclose(actions[0], actions[1], atol=1e-3)  # and redrawn for each


def _constant_action_return(goal, action, steps=20):
    positions = 0.1 * np.arange(1, steps + 1)[:, None] * np.clip(action, -1, 1)
    return -np.linalg.norm(positions - goal, axis=-1).sum()


@pytest.mark.parametrize("exploration", [2, 3])
def test_prior_then_posterior_in_evaluation(exploration):
    fns = _point_nav_functions("mlp", num_exp_traj_eval=exploration)
    state = fns.init(jax.random.key(0))
    params = _probe_params(state.params)
    out = jax.jit(fns.evaluate, static_argnums=4)(params, state.test_tasks, state.train_tasks, jax.random.key(1), 1)
    np.testing.assert_array_equal(out.trajectories, 3)  # 60 steps of 20-step trajectories
    informed = np.array([_constant_action_return(g, np.tanh(M_POSTERIOR)) for g in np.asarray(state.test_tasks)])
    if exploration == 2:  # the third (last) trajectory uses the posterior, the first the prior
        np.testing.assert_allclose(out.last, informed, rtol=1e-4)
    else:  # all three explore: none uses the posterior
        assert not np.allclose(out.last, informed, rtol=1e-3)
    assert not np.allclose(out.first, informed, rtol=1e-3)


class Countdown(brax_base.Env):
    """Reward 1 per step; the episode ends after ``task[0]`` steps (an Ant that falls)."""

    def reset(self, rng):
        del rng
        zero = jnp.zeros(())
        return brax_base.State(zero, jnp.zeros(2), zero, zero, {}, {"task": jnp.zeros(1)})

    def step(self, state, action):
        count = state.pipeline_state + 1.0
        done = (count >= state.info["task"][0]).astype(jnp.float32)
        obs = jnp.stack([count, action[0]])
        return state.replace(pipeline_state=count, obs=obs, reward=jnp.ones(()), done=done)

    observation_size = property(lambda self: 2)
    action_size = property(lambda self: 2)
    backend = property(lambda self: "jax")


def test_whole_trajectories_until_the_step_budget():
    """rlkit's InPlacePathSampler: whole trajectories while fewer than the budget's steps exist."""
    env = brax_wrappers.EpisodeWrapper(Countdown(), 10, action_repeat=1)
    sample = meta.uniform_tasks(1.0, 10.0)
    family = meta.TaskFamily("countdown", 1, sample, sample, meta.identity_context, 10)
    fns = pearl.make_functions(pearl.PEARLConfig(model="mlp", **TINY), env, family, capacity=100)
    params = fns.init(jax.random.key(0)).params
    tasks = jnp.array([[7.0], [10.0], [3.0]])  # episodes of 7, 10 (the time limit) and 3 steps

    def prior(row, index, key):
        del row, index
        return jax.random.normal(key, (5,))

    phase = jax.jit(fns.collect_trajectories, static_argnums=(3, 4))(
        params, tasks, jnp.zeros((3, 1)), 20, prior, jax.random.key(1)
    )
    # 20 steps: 7+7+7 (three start before 20), 10+10, 3 x 7 = 21
    np.testing.assert_array_equal(phase.steps, [21, 20, 21])
    np.testing.assert_array_equal(phase.trajectories, [3, 2, 7])
    np.testing.assert_array_equal(phase.valid.sum(1), phase.steps)
    np.testing.assert_array_equal(phase.returns, phase.steps)  # reward 1 per step
    stored = np.asarray(phase.transitions.obs[..., 0])[np.asarray(phase.valid)]  # step counts 0, 1, ...
    np.testing.assert_array_equal(stored[:21], np.concatenate([np.arange(7)] * 3))
    # evaluation (600 -> 60 steps here): trajectories until 60 steps, the last one's return reported
    out = jax.jit(fns.evaluate, static_argnums=4)(params, tasks, tasks, jax.random.key(2), 1)
    np.testing.assert_array_equal(out.trajectories, [9, 6, 20])
    np.testing.assert_array_equal(out.last, [7, 10, 3])


def test_per_environment_configs_are_the_authors():
    """PEARL/configs/<env>.json over configs/default.py, field by field."""
    want = {  # train/test tasks, meta_batch, prior, posterior, train steps, context batch, num_evals
        "halfcheetah_vel": (100, 30, 16, 400, 600, 2000, 100, 1),  # cheetah-vel.json
        "halfcheetah_vel_medium": (100, 30, 16, 400, 600, 2000, 100, 1),  # cheetah-vel-medium.json
        "ant_vel": (100, 30, 16, 400, 600, 2000, 100, 1),  # ant-vel.json
        "halfcheetah_fwd_back": (2, 2, 4, 1000, 1000, 2000, 256, 4),  # cheetah-dir.json
        "ant_fwd_back": (2, 2, 4, 400, 600, 4000, 256, 2),  # ant-dir.json
    }
    algorithm = algorithms.get("pearl")
    for env, values in want.items():
        config = algorithm.make_config("paper", env)  # what the CLI builds for --env
        assert tuple(getattr(config, f) for f in pearl.PER_ENV_FIELDS) == values, env
        assert (config.num_initial_steps, config.num_steps_per_eval, config.num_exp_traj_eval) == (2000, 600, 2)
        assert (config.num_tasks_sample, config.batch_size, config.heading_bug) == (5, 256, True)
        assert algorithm.make_config("oracle", env).num_evals == values[-1]  # every preset is per env
    # explicit values win; the shipped vel runs' 2 / 2 tasks are a preset
    assert algorithm.make_config("paper", "ant_fwd_back", meta_batch=7).meta_batch == 7
    shipped = algorithm.make_config("authors_task_counts", "halfcheetah_vel")
    assert (shipped.num_train_tasks, shipped.num_test_tasks, shipped.meta_batch) == (2, 2, 16)
    assert pearl.replay_capacity(shipped, 1_000_000) == 1_000_000  # the authors' per-task buffers
    assert pearl.replay_capacity(algorithm.make_config("paper", "ant_vel"), 1_000_000) == 50_000


def test_direction_tasks_and_the_oracle_normalisation():
    env, family = meta.make("point_nav", episode_length=20)
    config = pearl.PEARLConfig(model="mlp", **{**TINY, "num_train_tasks": 2, "num_test_tasks": 4})
    dir_family = family._replace(name="ant_fwd_back")  # the task list depends on the family's name
    state = pearl.make_functions(config, env, dir_family, capacity=100).init(jax.random.key(0))
    np.testing.assert_array_equal(state.train_tasks[:, 0], [-1, 1])
    np.testing.assert_array_equal(state.test_tasks[:, 0], [-1, 1, -1, 1])
    # vel: min and max over all 130 tasks (half_cheetah_vel.py's get_norm(self.tasks)); medium: training only
    train, test = jnp.array([[0.5], [2.0]]), jnp.array([[0.1], [2.9]])
    vel = meta.FAMILIES["halfcheetah_vel"].context(train, pearl.context_pool("halfcheetah_vel", train, test))
    np.testing.assert_allclose(vel[:, 0], [(0.5 - 0.1) / 2.8, (2.0 - 0.1) / 2.8], rtol=1e-6)
    np.testing.assert_array_equal(pearl.context_pool("halfcheetah_vel_medium", train, test), train)


@pytest.mark.slow  # 35 s on 2 cores; the presets' values are checked by test_authors_table.py
def test_authors_task_counts_runs_a_few_iterations():
    """2 training tasks, 5 draws per iteration with replacement (refused before), 3 iterations."""
    algorithm = algorithms.get("pearl")
    preset = ("num_train_tasks", "num_test_tasks", "num_tasks_sample")
    sizes = {**{k: v for k, v in TINY.items() if k not in preset}, "num_extra_rl_steps_posterior": 20}
    config = algorithm.make_config("authors_task_counts", **sizes)
    run = runner.RunConfig(env="point_nav", episode_length=20, total_steps=3, eval_every=3, buffer_size=400)
    runner.validate("pearl", run, config)
    assert (config.num_train_tasks, config.num_tasks_sample) == (2, 5)
    setting = trainer_lib.Setting(env=runner.env_spec(run), num_seeds=1, eval_episodes=1, buffer_size=400)
    trainer = pearl.make_trainer(config, setting)
    state = trainer.init(jax.random.key(0)[None])
    state, metrics = trainer.run_chunk(state, 0, 3)
    assert np.all(metrics["finite"]) and np.all(np.asarray(metrics["collect_steps"]) == 5 * 40)
    np.testing.assert_array_equal(np.asarray(state.replay.size).sum(), 2 * 20 + 3 * 5 * 40)
