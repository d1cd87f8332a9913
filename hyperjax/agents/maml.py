"""MAML with a TRPO outer step (Finn et al. 2017; the paper's Section 5.2), one XLA program per
iteration: sample tasks -> rollouts of every task's episodes (vmapped) -> one inner policy-gradient
step per task -> post-adaptation rollouts -> a TRPO step on the post-adaptation surrogate,
differentiated through the inner step (true second-order MAML; ``first_order`` stops the inner
gradient's gradient, what the authors' code effectively ran: docs/authors_code.md, MAML).

Three policies (``POLICIES``), all Gaussian with a state-independent log-std and no tanh (the
env clips actions to [-1, 1]): ``vanilla`` (MLP on the state), ``context`` (MLP on [state, oracle
context]) and ``hyper`` (the context is the hypernetwork's meta variable; its primary network
runs once per task, and the generated weights run on all of the task's states).

Shapes: per seed, a meta-batch of ``M`` tasks x ``E`` episodes x ``T`` steps.
"""

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import flax
import jax
import jax.numpy as jnp
from brax.envs import base as brax_base
from brax.envs.wrappers import training as brax_wrappers

from hyperjax import config as cfg
from hyperjax.agents import base, pg, trpo
from hyperjax.envs import meta, registry
from hyperjax.nn import hyper, policies
from hyperjax.train import rollout as rollout_lib
from hyperjax.train import trainer as trainer_lib

POLICIES = ("vanilla", "context", "hyper")
INNER_LR = {"vanilla": 0.1, "context": 0.1, "hyper": 5e-5}  # the authors' (--fast-lr, --fast-hyper-lr)


@dataclasses.dataclass
class MAMLConfig:
    """MAML-TRPO hyperparameters; defaults are the authors' (docs/authors_code.md, MAML)."""

    policy: str = cfg.field(
        "hyper", "Policy: vanilla (state), context (state + oracle context), hyper.", valid=POLICIES
    )
    hidden_sizes: Sequence[int] = cfg.field((100, 100), "MLP policy widths (paper: 100,100).", valid=cfg.POSITIVE_INT)
    hyper_hidden_sizes: Sequence[int] = cfg.field(
        (256,), "Hyper policy's dynamic-network widths (paper: 256).", valid=cfg.POSITIVE_INT
    )
    hyper_widths: Sequence[int] = cfg.field(
        hyper.LATENT_WIDTHS, "Hyper policy's primary ResNet widths (paper: 256,512,1024).", valid=cfg.POSITIVE_INT
    )
    inner_lr: float | None = cfg.field(
        None, "Inner SGD step size; unset: the authors' 0.1 (MLP policies) or 5e-5 (hyper).", valid=cfg.POSITIVE
    )
    first_order: bool = cfg.field(False, "First-order MAML: no gradient through the inner step.")
    meta_batch: int = cfg.field(40, "Tasks per iteration, drawn with replacement (paper: 40).", valid=cfg.POSITIVE_INT)
    fast_batch: int = cfg.field(
        20, "Episodes per task, before and after adaptation (paper: 20).", valid=cfg.POSITIVE_INT
    )
    num_train_tasks: int = cfg.field(100, "Fixed pool of training tasks (paper: 100).", valid=cfg.POSITIVE_INT)
    num_test_tasks: int = cfg.field(20, "Test tasks, evaluated before and after adaptation.", valid=cfg.POSITIVE_INT)
    gamma: float = cfg.field(0.95, "Discount (paper: 0.95).", valid=cfg.UNIT_INTERVAL)
    gae_lambda: float = cfg.field(1.0, "GAE lambda (paper: 1.0).", valid=cfg.UNIT_INTERVAL)
    max_kl: float = cfg.field(1e-2, "TRPO trust region (paper: 1e-2).", valid=cfg.POSITIVE)
    cg_iters: int = cfg.field(10, "Conjugate-gradient iterations (paper: 10).", valid=cfg.POSITIVE_INT)
    cg_damping: float = cfg.field(1e-5, "Fisher damping (paper: 1e-5).", valid=cfg.NON_NEGATIVE)
    ls_ratio: float = cfg.field(0.8, "Line-search backtracking ratio (paper: 0.8).", valid=cfg.UNIT_INTERVAL)
    ls_max_steps: int = cfg.field(20, "Line-search steps before reverting (paper: 20).", valid=cfg.POSITIVE_INT)
    heading_bug: bool = cfg.field(False, "ant_fwd_back: the authors' headings of +-1 rad instead of +-x.")


def inner_lr(config: MAMLConfig) -> float:
    return INNER_LR[config.policy] if config.inner_lr is None else config.inner_lr


# ---------------------------------------------------------------------------------------------
# Policies: weights made once per task, then run on the task's states.


class MetaPolicy(NamedTuple):
    """A Gaussian policy as MAML uses it.

    Attributes:
      init: ``key -> params``.
      task_weights: ``(params, context [ctx]) -> weights``: what the policy runs with on one task
        (the hyper policy's generated dynamic network; the MLPs' parameters and context),
        differentiable in ``params``.
      dist: ``(weights, obs [B, obs]) -> (mean [B, act], log_std [B, act])``.
    """

    init: Callable[[jax.Array], Any]
    task_weights: Callable[[Any, jax.Array], Any]
    dist: Callable[[Any, jax.Array], tuple[jax.Array, jax.Array]]


def make_policy(config: MAMLConfig, obs_size: int, action_size: int, context_size: int) -> MetaPolicy:
    """The ``config.policy`` network at the configured sizes."""
    if config.policy == "hyper":
        module = policies.HyperPolicy(
            action_size, hidden_sizes=tuple(config.hyper_hidden_sizes), widths=tuple(config.hyper_widths)
        )
        network = module.network(obs_size, parent=None)

        def init(key):
            return module.init(key, jnp.zeros((1, obs_size)), jnp.zeros((1, context_size)))["params"]

        def task_weights(params, context):
            layers = network.apply({"params": params["hyper"]}, context[None], method="generate")
            shared = [hyper.DynamicLayer(*(x[0] for x in layer)) for layer in layers]  # one set per task
            return shared, jnp.clip(params["log_std"], policies.LOG_STD_MIN, policies.LOG_STD_MAX)

        def dist(weights, obs):
            layers, log_std = weights
            return hyper.apply_dynamic(layers, obs), jnp.broadcast_to(log_std, (obs.shape[0], action_size))

        return MetaPolicy(init, task_weights, dist)

    module = policies.ContextMLPPolicy(action_size, hidden_sizes=tuple(config.hidden_sizes))
    width = context_size if config.policy == "context" else 0  # vanilla: an empty context

    def init(key):
        return module.init(key, jnp.zeros((1, obs_size)), jnp.zeros((1, width)))["params"]

    def task_weights(params, context):
        return params, context[:width]

    def dist(weights, obs):
        params, context = weights
        return module.apply({"params": params}, obs, jnp.broadcast_to(context, (obs.shape[0], width)))

    return MetaPolicy(init, task_weights, dist)


# ---------------------------------------------------------------------------------------------
# One task's episodes and the policy-gradient maths on them.


class Episodes(NamedTuple):
    """One task's ``E`` episodes of ``T`` steps, processed for policy gradients.

    Attributes:
      obs: ``[E, T, obs]``. action: ``[E, T, act]`` (unclipped samples).
      mask: ``[E, T]`` 1.0 on the steps of each episode (before and at its end).
      advantage: ``[E, T]`` GAE with the linear feature baseline, normalised over the task.
      returns: ``[E]`` undiscounted episode returns.
    """

    obs: jax.Array
    action: jax.Array
    mask: jax.Array
    advantage: jax.Array
    returns: jax.Array


class _ClipAction(brax_wrappers.Wrapper):
    """The Gaussian policy's samples clipped to [-1, 1] before the env (the authors' wrapper)."""

    def step(self, state: brax_base.State, action: jax.Array) -> brax_base.State:
        return self.env.step(state, jnp.clip(action, -1.0, 1.0))


def collect_episodes(env, policy: MetaPolicy, weights, key: jax.Array, num_episodes: int, length: int):
    """``num_episodes`` sampled episodes of one task: a ``Trajectory`` ``[E, T, ...]``."""

    def act(w, obs, k):
        mean, log_std = policy.dist(w, obs[None])
        return (mean + jnp.exp(log_std) * jax.random.normal(k, mean.shape))[0]

    keys = jax.random.split(key, num_episodes)
    return jax.vmap(lambda k: rollout_lib.rollout(env, act, weights, k, length))(keys)


def process(trajectory, gamma: float, gae_lambda: float) -> Episodes:
    """Advantages of one task's episodes (baseline refitted on them, as the authors)."""
    mask = jax.vmap(rollout_lib.valid_mask)(trajectory.done).astype(jnp.float32)
    reward = jnp.where(mask > 0, trajectory.reward, 0.0)  # NaN-safe after a terminal
    returns = jax.vmap(pg.discounted_returns, (0, 0, None))(reward, mask, gamma)
    features = jax.vmap(pg.baseline_features)(trajectory.obs, mask)
    values = features @ pg.fit_linear_baseline(features, returns, mask)
    advantage = jax.vmap(pg.gae, (0, 0, 0, None, None))(reward, values, mask, gamma, gae_lambda)
    return Episodes(
        obs=trajectory.obs,
        action=trajectory.action,
        mask=mask,
        advantage=jax.lax.stop_gradient(pg.normalize(advantage, mask)),
        returns=reward.sum(-1),
    )


def _flat(episodes: Episodes) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    e, t = episodes.mask.shape
    return (
        episodes.obs.reshape(e * t, -1),
        episodes.action.reshape(e * t, -1),
        episodes.advantage.reshape(e * t),
        episodes.mask.reshape(e * t),
    )


def inner_loss(policy: MetaPolicy, params, context: jax.Array, episodes: Episodes) -> jax.Array:
    """REINFORCE: ``-mean over valid steps of log pi(a|s, c) * A``."""
    obs, action, advantage, mask = _flat(episodes)
    mean, log_std = policy.dist(policy.task_weights(params, context), obs)
    return -pg.weighted_mean(pg.gaussian_log_prob(mean, log_std, action) * advantage, mask)


def adapt(policy: MetaPolicy, params, context, episodes: Episodes, lr: float, first_order: bool):
    """One inner SGD step on ``episodes``; differentiable through the step unless ``first_order``."""
    grads = jax.grad(inner_loss, argnums=1)(policy, params, context, episodes)
    if first_order:
        grads = jax.lax.stop_gradient(grads)
    return jax.tree.map(lambda p, g: p - lr * g, params, grads)


def outer_loss_and_kl(policy: MetaPolicy, params, context, pre: Episodes, post: Episodes, old, lr, first_order):
    """One task's post-adaptation TRPO surrogate and ``KL(old || adapted)``, both means over valid steps.

    ``old``: ``(mean, log_std)`` ``[E*T, act]`` of the adapted policy that collected ``post`` (fixed).
    """
    adapted = adapt(policy, params, context, pre, lr, first_order)
    obs, action, advantage, mask = _flat(post)
    mean, log_std = policy.dist(policy.task_weights(adapted, context), obs)
    old_mean, old_log_std = jax.lax.stop_gradient(old)
    log_ratio = pg.gaussian_log_prob(mean, log_std, action) - pg.gaussian_log_prob(old_mean, old_log_std, action)
    loss = -pg.weighted_mean(jnp.exp(log_ratio) * advantage, mask)
    kl = pg.weighted_mean(pg.gaussian_kl(old_mean, old_log_std, mean, log_std), mask)
    return loss, kl


# ---------------------------------------------------------------------------------------------
# The training state and programs (per seed).


@flax.struct.dataclass
class MAMLState:
    """Per seed. ``train_tasks [P, task]`` / ``test_tasks [N, task]`` are drawn once at init from
    the run's key; ``eval_key`` is folded with the step at each evaluation (reproducible on resume).
    Keys are raw key data (the library's convention for state): ``rng()`` / ``eval_rng()`` wrap them."""

    params: Any
    train_tasks: jax.Array
    test_tasks: jax.Array
    key: jax.Array
    eval_key: jax.Array

    def rng(self) -> jax.Array:
        return jax.random.wrap_key_data(self.key)

    def eval_rng(self) -> jax.Array:
        return jax.random.wrap_key_data(self.eval_key)


METRICS = ("train_return_pre", "train_return_post", "kl", "surrogate_gain", "line_search_steps", "accepted")


class Batch(NamedTuple):
    """One meta-batch of data: ``M`` tasks' episodes before and after adaptation (leaves ``[M, ...]``).

    Attributes:
      contexts: ``[M, task]`` oracle contexts.
      pre, post: ``Episodes`` before / after the inner step.
      old: ``(mean, log_std)`` ``[M, E*T, act]`` of the adapted policies that collected ``post``.
    """

    contexts: jax.Array
    pre: Episodes
    post: Episodes
    old: tuple[jax.Array, jax.Array]


class Functions(NamedTuple):
    """MAML's pure per-seed functions (the trainer vmaps and jits them; benchmarks and the Fig. 5
    experiment reuse them).

    Attributes:
      init: ``key -> MAMLState``.
      collect: ``(params, train_pool, key) -> Batch``: draw a meta-batch of tasks, roll out,
        adapt, roll out again (data only: no gradient flows out of it).
      meta_step: ``(params, Batch) -> (params, trpo.TrpoInfo)``: the TRPO outer step.
      iteration: ``(state, key) -> (params, metrics)``: ``collect`` then ``meta_step`` from
        ``state.params`` with trajectories sampled from ``key`` (the state's own key is untouched).
      adaptation: ``(params, tasks [N, task], train_pool, key, episodes) -> (pre [N], post [N])``:
        mean episode return per task before and after one inner step.
      returns: ``(params, tasks [N, task], train_pool, key, episodes) -> [N]``: mean episode
        return per task without adaptation.
    """

    init: Callable
    collect: Callable
    meta_step: Callable
    iteration: Callable
    adaptation: Callable
    returns: Callable


def make_functions(
    config: MAMLConfig, env: brax_base.Env, family: meta.TaskFamily, shard_tasks: Callable = lambda tree: tree
) -> Functions:
    """MAML's per-seed functions on ``env`` (a meta task) with ``config``.

    ``shard_tasks``: marks task-batched arrays (leading task axis) for splitting over devices
    (``trainer.SeedLayout.shard_tasks``); the identity on one device.
    """
    env = _ClipAction(env)
    length = env.episode_length
    policy = make_policy(config, env.observation_size, env.action_size, family.task_size)
    lr, first_order = inner_lr(config), config.first_order
    trpo_config = trpo.TrpoConfig(
        max_kl=config.max_kl,
        cg_iters=config.cg_iters,
        cg_damping=config.cg_damping,
        ls_ratio=config.ls_ratio,
        ls_max_steps=config.ls_max_steps,
    )

    def init(key):
        k_params, k_train, k_test, k_run, k_eval = jax.random.split(key, 5)
        return MAMLState(
            params=policy.init(k_params),
            train_tasks=family.sample_train(k_train, config.num_train_tasks),
            test_tasks=family.sample_test(k_test, config.num_test_tasks),
            key=jax.random.key_data(k_run),
            eval_key=jax.random.key_data(k_eval),
        )

    def one_task(params, task, context, key, episodes):
        """Pre-adaptation episodes, the adapted params, post-adaptation episodes (data only)."""
        task_env = meta.with_task(env, task)
        k_pre, k_post = jax.random.split(key)
        weights = policy.task_weights(params, context)
        pre = process(
            collect_episodes(task_env, policy, weights, k_pre, episodes, length), config.gamma, config.gae_lambda
        )
        adapted = adapt(policy, params, context, pre, lr, first_order=True)
        post_weights = policy.task_weights(adapted, context)
        trajectory = collect_episodes(task_env, policy, post_weights, k_post, episodes, length)
        post = process(trajectory, config.gamma, config.gae_lambda)
        return pre, post, policy.dist(post_weights, _flat(post)[0])

    def tasks_data(params, tasks, train_pool, key, episodes):
        contexts = family.context(tasks, train_pool)
        tasks, contexts, keys = shard_tasks((tasks, contexts, jax.random.split(key, tasks.shape[0])))
        one = functools.partial(one_task, episodes=episodes)
        pre, post, old = jax.vmap(one, (None, 0, 0, 0))(params, tasks, contexts, keys)
        return shard_tasks(Batch(contexts, pre, post, jax.lax.stop_gradient(old)))

    def collect(params, train_pool, key):
        k_tasks, k_data = jax.random.split(key)
        tasks = train_pool[jax.random.randint(k_tasks, (config.meta_batch,), 0, train_pool.shape[0])]
        return tasks_data(params, tasks, train_pool, k_data, config.fast_batch)

    def meta_step(params, batch: Batch):
        def loss_and_kl(params):
            per_task = jax.vmap(outer_loss_and_kl, (None, None, 0, 0, 0, 0, None, None))
            loss, kl = per_task(policy, params, batch.contexts, batch.pre, batch.post, batch.old, lr, first_order)
            return loss.mean(), kl.mean()

        surrogate, kl = (lambda p: loss_and_kl(p)[0]), (lambda p: loss_and_kl(p)[1])
        return trpo.trpo_step(surrogate, kl, params, trpo_config, surrogate_and_kl=loss_and_kl)

    def iteration(state: MAMLState, key: jax.Array):
        batch = collect(state.params, state.train_tasks, key)
        params, info = meta_step(state.params, batch)
        metrics = {
            "train_return_pre": batch.pre.returns.mean(),
            "train_return_post": batch.post.returns.mean(),
            "kl": info.kl,
            "surrogate_gain": info.loss_before - info.loss_after,
            "line_search_steps": info.ls_steps.astype(jnp.float32),
            "accepted": info.accepted.astype(jnp.float32),
        }
        return params, metrics

    def adaptation(params, tasks, train_pool, key, episodes):
        batch = tasks_data(params, tasks, train_pool, key, episodes)
        return batch.pre.returns.mean(-1), batch.post.returns.mean(-1)

    def returns(params, tasks, train_pool, key, episodes):
        def one(task, context, key):
            weights = policy.task_weights(params, context)
            trajectory = collect_episodes(meta.with_task(env, task), policy, weights, key, episodes, length)
            return jax.vmap(rollout_lib.episode_return)(trajectory).mean()

        contexts = family.context(tasks, train_pool)
        tasks, contexts, keys = shard_tasks((tasks, contexts, jax.random.split(key, tasks.shape[0])))
        return jax.vmap(one)(tasks, contexts, keys)

    return Functions(init, collect, meta_step, iteration, adaptation, returns)


def train_step(fns: Functions, state: MAMLState) -> tuple[MAMLState, dict]:
    """One meta-iteration of a training run: the state's key advances."""
    key, step_key = jax.random.split(state.rng())
    params, metrics = fns.iteration(state, step_key)
    return state.replace(params=params, key=jax.random.key_data(key)), metrics


def make_trainer(config: MAMLConfig, setting: trainer_lib.Setting) -> trainer_lib.Trainer:
    """MAML's trainer: a training step is one meta-iteration; ``evaluate`` returns the post-
    adaptation return per test task (``[S, N]``) and, as ``return_pre``, the one before adaptation.

    Programs: ``init``, ``run_chunk``, ``evaluate``.
    """
    env, family = meta.make(
        setting.env.name,
        episode_length=setting.env.episode_length,
        backend=setting.env.backend,
        heading_bug=config.heading_bug,
    )
    layout = trainer_lib.SeedLayout(setting.num_seeds, num_tasks=config.meta_batch)
    fns = make_functions(config, env, family, layout.shard_tasks)
    init, init_program = layout.init(fns.init)

    run_one = trainer_lib.repeated(lambda state: train_step(fns, state), METRICS, lambda state: state.params)

    def evaluate_one(state: MAMLState, step):
        key = jax.random.fold_in(state.eval_rng(), step)
        pre, post = fns.adaptation(state.params, state.test_tasks, state.train_tasks, key, setting.eval_episodes)
        return {"return": post, "return_pre": pre}

    run_program = layout.program(run_one, (0, None, None), donate=True)
    eval_program = layout.program(evaluate_one, (0, None))

    def run_chunk(state, start_step, num_steps):
        state, metrics = run_program(state, start_step, num_steps)
        return state, layout.to_seeds(metrics)

    return trainer_lib.Trainer(
        init=init,
        run_chunk=run_chunk,
        evaluate=lambda state, step: layout.to_seeds(eval_program(state, step)),
        programs={"init": init_program, "run_chunk": run_program, "evaluate": eval_program},
        metric_names=METRICS,
        extra_returns=("return_pre",),
    )


def check(config: MAMLConfig, setting: trainer_lib.Setting) -> None:
    """MAML trains on meta tasks only."""
    if not registry.is_meta(setting.env.name):
        raise ValueError(f"--env={setting.env.name} is not a meta task; valid: {', '.join(registry.META_ENVS)}")


ALGORITHM = base.Algorithm(
    name="maml",
    config=MAMLConfig,
    make_trainer=make_trainer,
    first_update=lambda config: 0,
    check=check,
    run_name=lambda config: config.policy + ("_fo" if config.first_order else ""),
    presets={"paper": {}, "first_order": {"first_order": True}},
    tasks_per_seed=lambda config: config.meta_batch,
    run_defaults={
        "env": "halfcheetah_vel",
        "total_steps": 400,
        "eval_every": 10,
        "eval_episodes": 20,
        "checkpoint_every": 50,
    },
    step_name="iterations",
    first_call_steps=1,
)
