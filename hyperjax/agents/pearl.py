"""PEARL (Rakelly et al. 2019) as the authors ran it (oyster's soft actor-critic with a V network;
the paper's Section 5.3), with an MLP or a hypernetwork actor-critic (``nn.pearl``).

One iteration (a training step of the runner) is one XLA program:
1. at the first iteration only, ``num_initial_steps`` per training task with ``z`` from the prior;
2. ``num_tasks_sample`` training tasks: each one's encoder buffer is emptied, ``num_steps_prior``
   steps are collected with ``z`` from the prior (into both buffers), then
   ``num_extra_rl_steps_posterior`` steps (into the RL buffer only) whose first trajectory uses a
   prior ``z`` and every later one a posterior ``z`` inferred from a fresh context batch of the
   task's encoder buffer (oyster's ``collect_data``; ``z`` is redrawn every trajectory);
3. ``num_train_steps`` gradient steps as one ``lax.scan``, each on ``meta_batch`` tasks x
   ``batch_size`` transitions and ``embedding_batch_size`` context transitions per task.

A gradient step (oyster's ``_take_step``): posterior ``q(z | c)`` = product of the encoder's
Gaussian factors, ``z`` by reparameterised sampling; the encoder and Q step on
``sum_i mean((Q_i(s, a, z) - (scale * r + gamma * d * V_target(s', z)))^2) + kl_lambda * KL(q || N(0, I))``;
V steps towards ``min Q(s, a~pi, z) - log pi`` (with the updated Q); the policy on
``mean(log pi - min Q) + 1e-3 (mean^2 + log_std^2)``; then the target V is Polyak-averaged.
The policy and V see ``z`` detached: the encoder learns through Q (and the KL) only.

Evaluation (oyster's protocol): per task, ``num_steps_per_eval`` steps of deterministic
trajectories; ``z`` from the prior for the first ``num_exp_traj_eval`` of them, then from the
posterior over every transition collected so far. ``return`` is the last trajectory's return
on the test tasks; ``return_prior`` the first one's (no task information yet); ``return_train``
the last one's on as many training tasks (a random subset).

Shapes (per seed): ``P`` training tasks, ``N`` test tasks, ``M`` tasks per step, ``B`` transitions.
"""

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import flax
import jax
import jax.numpy as jnp
import optax
from brax.envs import base as brax_base

from hyperjax import config as cfg
from hyperjax import types
from hyperjax.agents import base
from hyperjax.envs import meta, registry
from hyperjax.nn import hyper, pearl, policies
from hyperjax.train import replay as replay_lib
from hyperjax.train import rollout as rollout_lib
from hyperjax.train import trainer as trainer_lib

CONTEXTS = ("encoder", "oracle")
# The authors' learning rates per model (q, v, policy); the encoder's is 3e-4 for both.
LEARNING_RATES = {"mlp": (3e-4, 3e-4, 3e-4), "hyper": (5e-5, 5e-5, 1e-4)}


@dataclasses.dataclass
class PEARLConfig:
    """PEARL hyperparameters; defaults are the authors' cheetah-vel configuration (docs/authors_code.md, PEARL)."""

    model: str = cfg.field("hyper", "Actor-critic: mlp (3 x 300) or hyper (hypernetworks).", valid=pearl.MODELS)
    context: str = cfg.field(
        "encoder", "Task information: encoder (PEARL's inferred z) or oracle (the normalised task).", valid=CONTEXTS
    )
    latent_size: int = cfg.field(5, "Width of z (paper: 5).", valid=cfg.POSITIVE_INT)
    net_size: int = cfg.field(300, "MLP model widths, 3 layers (paper: 300).", valid=cfg.POSITIVE_INT)
    encoder_hidden_sizes: Sequence[int] = cfg.field(
        (200, 200, 200), "Context encoder widths (paper: 200,200,200).", valid=cfg.POSITIVE_INT
    )
    hyper_widths: Sequence[int] = cfg.field(
        hyper.LATENT_WIDTHS, "Hyper model's primary ResNet widths (paper: 256,512,1024).", valid=cfg.POSITIVE_INT
    )
    hyper_hidden_sizes: Sequence[int] = cfg.field(
        (256,), "Hyper model's dynamic-network widths (paper: 256).", valid=cfg.POSITIVE_INT
    )
    q_lr: float | None = cfg.field(None, "Q learning rate; unset: 3e-4 (mlp) or 5e-5 (hyper).", valid=cfg.POSITIVE)
    v_lr: float | None = cfg.field(None, "V learning rate; unset: 3e-4 (mlp) or 5e-5 (hyper).", valid=cfg.POSITIVE)
    policy_lr: float | None = cfg.field(
        None, "Policy learning rate; unset: 3e-4 (mlp) or 1e-4 (hyper).", valid=cfg.POSITIVE
    )
    encoder_lr: float = cfg.field(3e-4, "Context encoder learning rate (paper: 3e-4).", valid=cfg.POSITIVE)
    kl_lambda: float = cfg.field(0.1, "Weight of KL(q(z|c) || N(0, I)) (paper: 0.1).", valid=cfg.NON_NEGATIVE)
    reward_scale: float = cfg.field(5.0, "Reward scale in the Q target (paper: 5).", valid=cfg.POSITIVE)
    gamma: float = cfg.field(0.99, "Discount (paper: 0.99).", valid=cfg.UNIT_INTERVAL)
    tau: float = cfg.field(0.005, "Polyak rate of the target V (paper: 0.005).", valid=cfg.UNIT_INTERVAL)
    policy_reg: float = cfg.field(1e-3, "Weight of the mean^2 and log_std^2 regularisers.", valid=cfg.NON_NEGATIVE)
    num_train_tasks: int = cfg.field(
        100, "Training tasks (paper: 100; the authors' shipped configs ran 2).", valid=cfg.POSITIVE_INT
    )
    num_test_tasks: int = cfg.field(30, "Test tasks (paper: 30).", valid=cfg.POSITIVE_INT)
    num_initial_steps: int = cfg.field(
        2000, "Env steps per training task before the first iteration (paper: 2000).", valid=cfg.POSITIVE_INT
    )
    num_tasks_sample: int = cfg.field(
        5, "Training tasks collected on per iteration (paper: 5).", valid=cfg.POSITIVE_INT
    )
    num_steps_prior: int = cfg.field(400, "Steps per task with z from the prior (paper: 400).", valid=cfg.POSITIVE_INT)
    num_extra_rl_steps_posterior: int = cfg.field(
        600, "Further steps per task, posterior z, RL buffer only (paper: 600).", valid=cfg.NON_NEGATIVE
    )
    num_train_steps: int = cfg.field(2000, "Gradient steps per iteration (paper: 2000).", valid=cfg.POSITIVE_INT)
    meta_batch: int = cfg.field(16, "Tasks per gradient step (paper: 16).", valid=cfg.POSITIVE_INT)
    batch_size: int = cfg.field(256, "RL transitions per task per step (paper: 256).", valid=cfg.POSITIVE_INT)
    embedding_batch_size: int = cfg.field(
        100, "Context transitions per task per step (paper: 100).", valid=cfg.POSITIVE_INT
    )
    num_steps_per_eval: int = cfg.field(
        600, "Env steps per evaluation task, whole trajectories (paper: 600).", valid=cfg.POSITIVE_INT
    )
    num_exp_traj_eval: int = cfg.field(
        2, "Evaluation trajectories before the posterior is used (paper: 2).", valid=cfg.POSITIVE_INT
    )
    heading_bug: bool = cfg.field(False, "ant_fwd_back: the authors' headings of +-1 rad instead of +-x.")


def learning_rates(config: PEARLConfig) -> dict[str, float]:
    """Each network's Adam learning rate (the authors' per model unless set)."""
    q, v, policy = LEARNING_RATES[config.model]
    return {
        "q": config.q_lr or q,
        "v": config.v_lr or v,
        "policy": config.policy_lr or policy,
        "encoder": config.encoder_lr,
    }


@flax.struct.dataclass
class PEARLState:
    """Per seed. ``replay``: per-task RL buffers ``[P, capacity, ...]``; ``context_replay``: the
    per-task encoder buffers (``[P, max(initial, prior steps), ...]``). Tasks are drawn at init from
    the run's key. Keys are raw key data (``rng()`` / ``eval_rng()`` wrap them)."""

    params: dict
    target_v: Any
    opt_state: dict
    replay: replay_lib.Replay
    context_replay: replay_lib.Replay
    train_tasks: jax.Array
    test_tasks: jax.Array
    key: jax.Array
    eval_key: jax.Array

    def rng(self) -> jax.Array:
        return jax.random.wrap_key_data(self.key)

    def eval_rng(self) -> jax.Array:
        return jax.random.wrap_key_data(self.eval_key)


METRICS = ("train_return", "q_loss", "v_loss", "policy_loss", "kl", "z_variance", "entropy", "q")


def context_features(transitions: types.Transition) -> jax.Array:
    """``(s, a, r)`` per transition, ``[..., obs + act + 1]`` (the encoder's input)."""
    return jnp.concatenate([transitions.obs, transitions.action, transitions.reward[..., None]], -1)


class Losses(NamedTuple):
    """PEARL's losses; each takes the whole params tree, so the gradient tree shows where every
    loss reaches (the encoder only through ``critic``).

    critic: ``(params, target_v, data) -> (loss, aux)``: twin-Q TD loss plus ``kl_lambda * KL``.
    actor_value: ``(params, data) -> (loss, aux)``: policy loss plus V loss, ``z`` detached.
    ``data``: ``(batch [M, B], context [M, C, ctx], oracle [M, ctx], z_noise [M, z], action_noise [M, B, act])``.
    """

    critic: Callable
    actor_value: Callable


def make_losses(config: PEARLConfig, nets: pearl.Networks) -> Losses:
    use_encoder = config.context == "encoder"

    def latent(params, context, oracle, z_noise):
        """``(z [M, z], kl)``: posterior samples per task (or the oracle context, kl 0)."""
        if not use_encoder:
            return oracle, jnp.zeros(()), jnp.zeros(())
        mean, variance = pearl.product_of_gaussians(*nets.encode(params, context))
        z = mean + jnp.sqrt(variance) * z_noise
        return z, pearl.kl_to_standard_normal(mean, variance), variance.mean()

    def per_transition(x, batch_shape):
        return jnp.broadcast_to(x[:, None], (*batch_shape, x.shape[-1])).reshape(-1, x.shape[-1])

    def flat(x):
        return x.reshape(-1, *x.shape[2:])

    def critic(params, target_v, data):
        batch, context, oracle, z_noise, _ = data
        z, kl, z_variance = latent(params, context, oracle, z_noise)
        zb = per_transition(z, batch.reward.shape)
        next_v = nets.v(target_v, flat(batch.next_obs), jax.lax.stop_gradient(zb))
        target = config.reward_scale * flat(batch.reward) + config.gamma * flat(batch.discount) * next_v
        q = nets.q(params, flat(batch.obs), flat(batch.action), zb)  # [2, M*B]
        td = jnp.sum(jnp.mean((q - jax.lax.stop_gradient(target)) ** 2, axis=-1))
        return td + config.kl_lambda * kl, {"q_loss": td, "kl": kl, "z_variance": z_variance, "q": q.mean()}

    def actor_value(params, data):
        batch, context, oracle, z_noise, action_noise = data
        z = jax.lax.stop_gradient(latent(params, context, oracle, z_noise)[0])  # oyster: task_z.detach()
        mean, log_std = jax.vmap(nets.policy, (None, 0, 0))(params, batch.obs, z)  # [M, B, act]
        action, log_pi = policies.tanh_gaussian(mean, log_std, action_noise)  # [M, B, act], [M, B]
        zb = per_transition(z, batch.reward.shape)
        obs = flat(batch.obs)
        min_q = jnp.min(nets.q(params, obs, flat(action), zb), axis=0)
        log_pi = flat(log_pi)
        v_target = jax.lax.stop_gradient(min_q - log_pi)
        v_loss = jnp.mean((nets.v(params["v"], obs, zb) - v_target) ** 2)
        reg = config.policy_reg * (jnp.mean(mean**2) + jnp.mean(log_std**2))
        policy_loss = jnp.mean(log_pi - min_q) + reg
        return policy_loss + v_loss, {"policy_loss": policy_loss, "v_loss": v_loss, "entropy": -log_pi.mean()}

    return Losses(critic, actor_value)


class Functions(NamedTuple):
    """PEARL's pure per-seed functions (the trainer vmaps and jits them; benchmarks reuse them).

    Attributes:
      init: ``key -> PEARLState`` (empty buffers).
      initial_collection: ``state -> state``: ``num_initial_steps`` per training task, prior ``z``.
      collect: ``(state, key) -> (state, mean return)``: one iteration's data collection.
      train: ``(state, key) -> (state, metrics)``: ``num_train_steps`` gradient steps (a scan).
      gradient_step: ``(params, target_v, opt_state, replay, context_replay, train_tasks, key)
        -> (params, target_v, opt_state, metrics)``: one step.
      evaluate: ``(params, tasks [N, task], train_pool, key, runs) -> returns [N, trajectories]``
        (means over ``runs`` independent runs per task, oyster's ``num_evals``).
    """

    init: Callable
    initial_collection: Callable
    collect: Callable
    train: Callable
    gradient_step: Callable
    evaluate: Callable


def _trajectories(config: PEARLConfig, steps: int, length: int, what: str) -> int:
    if steps % length:
        raise ValueError(f"--{what}={steps} must be a multiple of the episode length {length} (whole trajectories)")
    return steps // length


def make_functions(
    config: PEARLConfig,
    env: brax_base.Env,
    family: meta.TaskFamily,
    capacity: int,
    shard_tasks: Callable = lambda tree: tree,
) -> Functions:
    """PEARL's per-seed functions on ``env`` (a meta task); ``capacity``: RL transitions per task.

    ``shard_tasks``: marks task-batched arrays (leading task axis) for splitting over devices
    (``trainer.SeedLayout.shard_tasks``); the identity on one device.
    """
    length = env.episode_length
    obs_size, action_size = env.observation_size, env.action_size
    use_encoder = config.context == "encoder"
    latent_size = config.latent_size if use_encoder else family.task_size
    nets = pearl.make_networks(
        config.model,
        obs_size,
        action_size,
        latent_size,
        encoder=use_encoder,
        net_size=config.net_size,
        encoder_hidden_sizes=config.encoder_hidden_sizes,
        hyper_widths=config.hyper_widths,
        hyper_hidden_sizes=config.hyper_hidden_sizes,
    )
    losses = make_losses(config, nets)
    optimizers = {name: optax.adam(lr) for name, lr in learning_rates(config).items()}
    initial_trajs = _trajectories(config, config.num_initial_steps, length, "num_initial_steps")
    prior_trajs = _trajectories(config, config.num_steps_prior, length, "num_steps_prior")
    posterior_trajs = _trajectories(config, config.num_extra_rl_steps_posterior, length, "num_extra_rl_steps_posterior")
    eval_trajs = _trajectories(config, config.num_steps_per_eval, length, "num_steps_per_eval")
    context_capacity = max(config.num_initial_steps, config.num_steps_prior)
    example = types.Transition(
        obs=jnp.zeros(obs_size),
        action=jnp.zeros(action_size),
        reward=jnp.zeros(()),
        discount=jnp.zeros(()),
        next_obs=jnp.zeros(obs_size),
    )

    def init(key):
        k_params, k_train, k_test, k_run, k_eval = jax.random.split(key, 5)
        params = nets.init(k_params)
        return PEARLState(
            params=params,
            target_v=jax.tree.map(jnp.copy, params["v"]),
            opt_state={name: opt.init(params[name]) for name, opt in optimizers.items() if name in params},
            replay=replay_lib.init_per_task(config.num_train_tasks, capacity, example),
            context_replay=replay_lib.init_per_task(config.num_train_tasks, context_capacity, example),
            train_tasks=family.sample_train(k_train, config.num_train_tasks),
            test_tasks=family.sample_test(k_test, config.num_test_tasks),
            key=jax.random.key_data(k_run),
            eval_key=jax.random.key_data(k_eval),
        )

    # --- acting -------------------------------------------------------------------------------

    def posterior_z(params, context, mask, key):
        mean, variance = pearl.product_of_gaussians(*nets.encode(params, context), mask)
        return mean + jnp.sqrt(variance) * jax.random.normal(key, mean.shape)

    def prior_z(key):
        return jax.random.normal(key, (latent_size,))

    def run_trajectory(params, task, z, key, deterministic):
        """One trajectory of ``task`` with latent ``z``: ``(Transition [T], valid [T], return)``."""

        def act(weights, obs, k):
            mean, log_std = nets.policy_dist(weights, obs[None])
            if deterministic:
                return jnp.tanh(mean[0])
            return policies.sample_tanh_gaussian(k, mean, log_std)[0][0]

        weights = nets.policy_weights(params, z)  # the hyper policy's primary network: once per trajectory
        traj = rollout_lib.rollout(meta.with_task(env, task), act, weights, key, length)
        valid = rollout_lib.valid_mask(traj.done)
        transitions = types.Transition(
            obs=traj.obs,
            action=traj.action,
            reward=jnp.where(valid, traj.reward, 0.0),
            discount=1.0 - traj.done * (1.0 - traj.truncation),
            next_obs=traj.next_obs,
        )
        return transitions, valid, rollout_lib.episode_return(traj)

    def oracle(tasks, train_pool):
        return family.context(tasks, train_pool)

    # --- data collection ----------------------------------------------------------------------

    def initial_collection(state: PEARLState) -> PEARLState:
        key, k_data = jax.random.split(state.rng())
        tasks = jnp.arange(config.num_train_tasks)
        keys = jax.random.split(k_data, (config.num_train_tasks, initial_trajs, 2))
        contexts = oracle(state.train_tasks, state.train_tasks)
        train_tasks, contexts, keys = shard_tasks((state.train_tasks, contexts, keys))

        def one(task, context, k):
            z = prior_z(k[0]) if use_encoder else context
            return run_trajectory(state.params, task, z, k[1], False)[:2]

        per_task = jax.vmap(jax.vmap(one, (None, None, 0)), (0, 0, 0))
        transitions, valid = per_task(train_tasks, contexts, keys)  # [P, K, T, ...]
        transitions, valid = jax.tree.map(lambda x: x.reshape(x.shape[0], -1, *x.shape[3:]), (transitions, valid))
        return state.replace(
            replay=replay_lib.add_to_tasks(state.replay, tasks, transitions, valid),
            context_replay=replay_lib.add_to_tasks(state.context_replay, tasks, transitions, valid),
            key=jax.random.key_data(key),
        )

    def collect(state: PEARLState, key):
        """Prior phase, then posterior phase, on ``num_tasks_sample`` distinct training tasks."""
        k_tasks, k_prior, k_post = jax.random.split(key, 3)
        ids = jax.random.choice(k_tasks, config.num_train_tasks, (config.num_tasks_sample,), replace=False)
        tasks = state.train_tasks[ids]
        contexts = oracle(tasks, state.train_tasks)
        context_replay = replay_lib.clear_tasks(state.context_replay, ids)

        def prior_one(task, context, k):
            z = prior_z(k[0]) if use_encoder else context
            return run_trajectory(state.params, task, z, k[1], False)

        keys = jax.random.split(k_prior, (config.num_tasks_sample, prior_trajs, 2))
        tasks, contexts, keys = shard_tasks((tasks, contexts, keys))
        transitions, valid, prior_returns = jax.vmap(jax.vmap(prior_one, (None, None, 0)))(tasks, contexts, keys)
        transitions, valid = jax.tree.map(lambda x: x.reshape(x.shape[0], -1, *x.shape[3:]), (transitions, valid))
        replay = replay_lib.add_to_tasks(state.replay, ids, transitions, valid)
        context_replay = replay_lib.add_to_tasks(context_replay, ids, transitions, valid)
        if posterior_trajs == 0:
            return state.replace(replay=replay, context_replay=context_replay), prior_returns.mean()

        def posterior_one(task_id, task, context, index, k):
            if use_encoder:  # oyster: the first trajectory after clear_z draws from the prior
                sample = replay_lib.sample_from_tasks(context_replay, k[0], task_id[None], config.embedding_batch_size)
                z_post = posterior_z(state.params, context_features(sample)[0], None, k[1])
                z = jnp.where(index == 0, prior_z(k[2]), z_post)
            else:
                z = context
            return run_trajectory(state.params, task, z, k[3], False)

        keys = shard_tasks(jax.random.split(k_post, (config.num_tasks_sample, posterior_trajs, 4)))
        index = jnp.arange(posterior_trajs)
        one_task = jax.vmap(posterior_one, (None, None, None, 0, 0))
        transitions, valid, post_returns = jax.vmap(one_task, (0, 0, 0, None, 0))(ids, tasks, contexts, index, keys)
        transitions, valid = jax.tree.map(lambda x: x.reshape(x.shape[0], -1, *x.shape[3:]), (transitions, valid))
        replay = replay_lib.add_to_tasks(replay, ids, transitions, valid)
        mean_return = jnp.concatenate([prior_returns.ravel(), post_returns.ravel()]).mean()
        return state.replace(replay=replay, context_replay=context_replay), mean_return

    # --- learning -----------------------------------------------------------------------------

    def gradient_step(params, target_v, opt_state, replay, context_replay, train_tasks, key):
        k_tasks, k_ctx, k_batch, k_z, k_act = jax.random.split(key, 5)
        ids = jax.random.randint(k_tasks, (config.meta_batch,), 0, config.num_train_tasks)
        context = context_features(
            replay_lib.sample_from_tasks(context_replay, k_ctx, ids, config.embedding_batch_size)
        )
        batch = replay_lib.sample_from_tasks(replay, k_batch, ids, config.batch_size)
        data = (
            batch,
            context,
            oracle(train_tasks[ids], train_tasks),
            jax.random.normal(k_z, (config.meta_batch, latent_size)),
            jax.random.normal(k_act, batch.action.shape),
        )
        data = shard_tasks(data)  # every leaf [meta_batch, ...]
        (_, c_aux), c_grads = jax.value_and_grad(losses.critic, has_aux=True)(params, target_v, data)
        new_params, new_opt = dict(params), dict(opt_state)
        for name in ("q", "encoder") if use_encoder else ("q",):
            new_params[name], new_opt[name] = base.apply_gradients(
                optimizers[name], params[name], opt_state[name], c_grads[name]
            )
        # policy and V with the updated Q and the z of this step (the encoder before its update)
        (_, a_aux), a_grads = jax.value_and_grad(losses.actor_value, has_aux=True)(
            {**new_params, **({"encoder": params["encoder"]} if use_encoder else {})}, data
        )
        for name in ("v", "policy"):
            new_params[name], new_opt[name] = base.apply_gradients(
                optimizers[name], params[name], opt_state[name], a_grads[name]
            )
        target_v = optax.incremental_update(new_params["v"], target_v, config.tau)
        return new_params, target_v, new_opt, {**c_aux, **a_aux}

    def train(state: PEARLState, key):
        def body(carry, k):
            params, target_v, opt_state = carry
            params, target_v, opt_state, metrics = gradient_step(
                params, target_v, opt_state, state.replay, state.context_replay, state.train_tasks, k
            )
            return (params, target_v, opt_state), metrics

        carry = (state.params, state.target_v, state.opt_state)
        (params, target_v, opt_state), metrics = jax.lax.scan(
            body, carry, jax.random.split(key, config.num_train_steps)
        )
        state = state.replace(params=params, target_v=target_v, opt_state=opt_state)
        return state, jax.tree.map(jnp.mean, metrics)

    # --- evaluation ---------------------------------------------------------------------------

    def evaluate(params, tasks, train_pool, key, runs):
        """Oyster's protocol, ``runs`` times per task: ``[N, eval trajectories]`` mean returns."""
        contexts = oracle(tasks, train_pool)

        def one(task, context, key):
            def body(carry, inputs):
                features, mask = carry
                index, k = inputs
                if use_encoder:
                    informed = index >= config.num_exp_traj_eval
                    z = jnp.where(informed, posterior_z(params, features, mask, k[0]), prior_z(k[1]))
                else:
                    z = context
                transitions, valid, ret = run_trajectory(params, task, z, k[2], True)
                at = index * length
                features = jax.lax.dynamic_update_slice_in_dim(features, context_features(transitions), at, 0)
                mask = jax.lax.dynamic_update_slice_in_dim(mask, valid.astype(jnp.float32), at, 0)
                return (features, mask), ret

            features = jnp.zeros((eval_trajs * length, obs_size + action_size + 1))
            mask = jnp.zeros(eval_trajs * length)
            inputs = (jnp.arange(eval_trajs), jax.random.split(key, (eval_trajs, 3)))
            return jax.lax.scan(body, (features, mask), inputs)[1]

        tasks, contexts, keys = shard_tasks((tasks, contexts, jax.random.split(key, (tasks.shape[0], runs))))
        return jax.vmap(jax.vmap(one, (None, None, 0)))(tasks, contexts, keys).mean(1)

    return Functions(init, initial_collection, collect, train, gradient_step, evaluate)


def iteration(fns: Functions, state: PEARLState) -> tuple[PEARLState, dict]:
    """One training iteration after the initial collection: collect, then the gradient steps."""
    key, k_collect, k_train = jax.random.split(state.rng(), 3)
    state, train_return = fns.collect(state, k_collect)
    state, metrics = fns.train(state, k_train)
    return state.replace(key=jax.random.key_data(key)), {**metrics, "train_return": train_return}


def make_env(config: PEARLConfig, setting: trainer_lib.Setting):
    """``(env, family)`` of the run."""
    return meta.make(
        setting.env.name,
        episode_length=setting.env.episode_length,
        backend=setting.env.backend,
        heading_bug=config.heading_bug,
    )


def make_trainer(config: PEARLConfig, setting: trainer_lib.Setting) -> trainer_lib.Trainer:
    """PEARL's trainer: a training step is one iteration; ``evaluate`` returns the test tasks'
    last-trajectory return ``[S, N]``, with ``return_prior`` (first trajectory) and
    ``return_train`` (last trajectory on as many training tasks).

    Programs: ``init``, ``initial_collection`` (run by the first training call from step 0),
    ``run_chunk``, ``evaluate``.
    """
    env, family = make_env(config, setting)
    layout = trainer_lib.SeedLayout(setting.num_seeds, num_tasks=config.meta_batch)
    fns = make_functions(config, env, family, setting.buffer_size, layout.shard_tasks)
    init, init_program = layout.init(fns.init)
    num_eval_train = min(config.num_test_tasks, config.num_train_tasks)

    run_one = trainer_lib.repeated(
        lambda state: iteration(fns, state), METRICS, lambda state: (state.params, state.target_v)
    )

    def evaluate_one(state: PEARLState, step):
        k_test, k_train, k_subset = jax.random.split(jax.random.fold_in(state.eval_rng(), step), 3)
        runs = setting.eval_episodes  # oyster's num_evals
        test = fns.evaluate(state.params, state.test_tasks, state.train_tasks, k_test, runs)
        subset = jax.random.choice(k_subset, config.num_train_tasks, (num_eval_train,), replace=False)
        train = fns.evaluate(state.params, state.train_tasks[subset], state.train_tasks, k_train, runs)
        return {"return": test[:, -1], "return_prior": test[:, 0], "return_train": train[:, -1]}

    initial_program = layout.program(fns.initial_collection, 0, donate=True)
    run_program = layout.program(run_one, (0, None, None), donate=True)
    eval_program = layout.program(evaluate_one, (0, None))

    def run_chunk(state, start_step, num_steps):
        if start_step == 0:
            state = initial_program(state)
        state, metrics = run_program(state, start_step, num_steps)
        return state, layout.to_seeds(metrics)

    return trainer_lib.Trainer(
        init=init,
        run_chunk=run_chunk,
        evaluate=lambda state, step: layout.to_seeds(eval_program(state, step)),
        programs={
            "init": init_program,
            "initial_collection": initial_program,
            "run_chunk": run_program,
            "evaluate": eval_program,
        },
        metric_names=METRICS,
        extra_returns=("return_prior", "return_train"),
    )


def check(config: PEARLConfig, setting: trainer_lib.Setting) -> None:
    """Meta tasks only; schedules of whole trajectories; batches the buffers can serve."""
    if not registry.is_meta(setting.env.name):
        raise ValueError(f"--env={setting.env.name} is not a meta task; valid: {', '.join(registry.META_ENVS)}")
    length = setting.env.episode_length or meta.FAMILIES[setting.env.name].default_episode_length
    for what in ("num_initial_steps", "num_steps_prior", "num_extra_rl_steps_posterior", "num_steps_per_eval"):
        _trajectories(config, getattr(config, what), length, what)
    if config.num_tasks_sample > config.num_train_tasks:
        raise ValueError(
            f"--num_tasks_sample={config.num_tasks_sample} exceeds --num_train_tasks={config.num_train_tasks}"
        )
    if config.num_exp_traj_eval > config.num_steps_per_eval // length:
        raise ValueError(
            f"--num_exp_traj_eval={config.num_exp_traj_eval} exceeds the {config.num_steps_per_eval // length} "
            "trajectories of --num_steps_per_eval"
        )
    per_collection = max(config.num_initial_steps, config.num_steps_prior + config.num_extra_rl_steps_posterior)
    if setting.buffer_size < per_collection:
        raise ValueError(
            f"--buffer_size={setting.buffer_size} (per task) is below one collection's {per_collection} transitions"
        )


ALGORITHM = base.Algorithm(
    name="pearl",
    config=PEARLConfig,
    make_trainer=make_trainer,
    first_update=lambda config: 0,
    check=check,
    run_name=lambda config: config.model + ("_oracle" if config.context == "oracle" else ""),
    presets={
        "paper": {},
        # the authors' configs as shipped: n_train/n_eval inside env_params, so the launcher's 2 / 2
        "authors_task_counts": {"num_train_tasks": 2, "num_test_tasks": 2},
        "oracle": {"context": "oracle"},
    },
    run_defaults={
        "env": "halfcheetah_vel",
        "total_steps": 400,
        "eval_every": 10,
        "eval_episodes": 1,
        "checkpoint_every": 10,
        "buffer_size": 50_000,
    },
    step_name="iterations",
    first_call_steps=1,
    tasks_per_seed=lambda config: config.meta_batch,
)
