"""MAML with a TRPO outer step (Finn et al. 2017; the paper's Section 5.2), one XLA program per
iteration: sample tasks -> rollouts of every task's episodes (vmapped) -> one inner policy-gradient
step per task -> post-adaptation rollouts -> a TRPO step on the post-adaptation surrogate.

The ``paper`` preset (the ``MAMLConfig`` defaults) is what the authors' code ran
(docs/authors_code.md, MAML):

- **First order.** Their policies ignore the adapted ``params`` and their ``surrogate_loss`` loads
  the adapted values into the module (``load_state_dict``) before the forward pass, so the outer
  gradient is the surrogate's gradient at the adapted parameters, ``grad L(theta')``, with no
  gradient through the inner step; their Fisher-vector product is the KL's Hessian at the adapted
  parameters, taken with respect to them. Here: the inner gradient is ``stop_gradient``-ed in
  ``adapt``, so ``d theta' / d theta = I`` and both the TRPO gradient and the Fisher-vector product
  are those at ``theta'`` (the line search still re-adapts from each candidate, as theirs).
  ``second_order=True`` differentiates through the inner step (true MAML; an improvement).
- **The pre-adaptation baseline.** The post-adaptation advantages use the linear baseline fitted on
  the task's pre-adaptation episodes (their ``adapt`` fits it on the train episodes, then
  ``surrogate_loss`` evaluates it on the valid ones). ``refit_baseline=True`` refits it on the
  post-adaptation episodes (an improvement: a baseline of the policy that collected them).
- **KL(new || old)** in the line search's trust-region test, their ``kl_divergence(pi, old_pi)``.

Three policies (``POLICIES``), all Gaussian with a state-independent log-std and no tanh (the
env clips actions to [-1, 1]): ``vanilla`` (MLP on the state), ``context`` (MLP on [state, oracle
context]) and ``hyper`` (the context is the hypernetwork's meta variable; its primary network
runs once per task, and the generated weights run on all of the task's states). The hyper policy's
inner step is taken in closed form (``MetaPolicy.adapted_weights``, ``maml_adapt``): its primary
network and heads see one input per task, so each Dense layer's step is a rank-one update that never
forms an adapted copy of the ~13.5M hypernetwork parameters per task.

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
from hyperjax.agents import base, maml_adapt, pg, trpo
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
    second_order: bool = cfg.field(
        False,
        "True (second-order) MAML: the outer gradient and Fisher go through the inner step; paper: off "
        "(the authors' code is first order in effect).",
    )
    refit_baseline: bool = cfg.field(
        False,
        "Post-adaptation advantages from a baseline refitted on the post-adaptation episodes; paper: off "
        "(the baseline fitted on the pre-adaptation episodes, as the authors').",
    )
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
    heading_bug: bool = cfg.field(
        True, "ant_fwd_back: the authors' headings of +-1 rad (paper); off: the intended +-x directions."
    )


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
      adapted_weights: optional ``(params, context [ctx], loss, lr, second_order) -> weights``:
        ``task_weights`` at ``params - lr grad loss(task_weights(params, context))`` (one inner SGD
        step, ``adapt``; ``loss``: ``weights -> []``) computed without the stepped ``params``. The
        hyper policy's (``maml_adapt.sgd_step_outputs``); None: ``adapt`` then ``task_weights``.
    """

    init: Callable[[jax.Array], Any]
    task_weights: Callable[[Any, jax.Array], Any]
    dist: Callable[[Any, jax.Array], tuple[jax.Array, jax.Array]]
    adapted_weights: Callable[..., Any] | None = None


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

        def adapted_weights(params, context, loss, lr, second_order):
            return maml_adapt.sgd_step_outputs(
                lambda p: task_weights(p, context), params, loss, lr, second_order, modules_at=("hyper",)
            )

        return MetaPolicy(init, task_weights, dist, adapted_weights)

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
      obs: ``[E, T, obs]``. action: ``[E, T, act]`` (unclipped samples). Both 0 after an episode's
        end (selected out, so whatever the env emitted there, NaN included, cannot reach a gradient).
      reward: ``[E, T]``, 0 after an episode's end.
      mask: ``[E, T]`` 1.0 on the steps of each episode (before and at its end).
      advantage: ``[E, T]`` GAE with the linear feature baseline, normalised over the task.
      returns: ``[E]`` undiscounted episode returns.
      baseline: ``[F]`` the linear baseline's weights the advantages used.
    """

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    mask: jax.Array
    advantage: jax.Array
    returns: jax.Array
    baseline: jax.Array


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


def process(trajectory, gamma: float, gae_lambda: float, baseline: jax.Array | None = None) -> Episodes:
    """Advantages of one task's episodes (``Trajectory`` ``[E, T, ...]``).

    ``baseline``: the linear baseline's weights ``[F]`` to use (e.g. those fitted on the task's
    pre-adaptation episodes, as the authors' post-adaptation advantages); None: fit them on these
    episodes. Steps after an episode's end are selected out (``jnp.where``), never multiplied by
    the mask: NaN x 0 is NaN.
    """
    mask = jax.vmap(rollout_lib.valid_mask)(trajectory.done).astype(jnp.float32)
    valid = mask > 0
    obs = jnp.where(valid[..., None], trajectory.obs, 0.0)
    action = jnp.where(valid[..., None], trajectory.action, 0.0)
    reward = jnp.where(valid, trajectory.reward, 0.0)
    returns = jax.vmap(pg.discounted_returns, (0, 0, None))(reward, mask, gamma)
    features = jax.vmap(pg.baseline_features)(obs, mask)
    if baseline is None:
        baseline = pg.fit_linear_baseline(features, returns, mask)
    values = features @ baseline
    advantage = jax.vmap(pg.gae, (0, 0, 0, None, None))(reward, values, mask, gamma, gae_lambda)
    return Episodes(
        obs=obs,
        action=action,
        reward=reward,
        mask=mask,
        advantage=jax.lax.stop_gradient(pg.normalize(advantage, mask)),
        returns=reward.sum(-1),
        baseline=baseline,
    )


def _flat(episodes: Episodes) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    e, t = episodes.mask.shape
    return (
        episodes.obs.reshape(e * t, -1),
        episodes.action.reshape(e * t, -1),
        episodes.advantage.reshape(e * t),
        episodes.mask.reshape(e * t),
    )


def weights_loss(policy: MetaPolicy, weights, episodes: Episodes) -> jax.Array:
    """REINFORCE of the policy running ``weights``: ``-mean over valid steps of log pi(a|s) * A``."""
    obs, action, advantage, mask = _flat(episodes)
    mean, log_std = policy.dist(weights, obs)
    return -pg.weighted_mean(pg.gaussian_log_prob(mean, log_std, action) * advantage, mask)


def inner_loss(policy: MetaPolicy, params, context: jax.Array, episodes: Episodes) -> jax.Array:
    """REINFORCE: ``-mean over valid steps of log pi(a|s, c) * A``."""
    return weights_loss(policy, policy.task_weights(params, context), episodes)


def adapt(policy: MetaPolicy, params, context, episodes: Episodes, lr: float, second_order: bool = False):
    """One inner SGD step on ``episodes``: ``theta' = theta - lr grad inner_loss(theta)``.

    First order (the default; the authors' effective behaviour): the inner gradient is a constant
    to differentiation, so ``d theta' / d theta = I``. ``second_order``: differentiable through it.
    """
    grads = jax.grad(inner_loss, argnums=1)(policy, params, context, episodes)
    if not second_order:
        grads = jax.lax.stop_gradient(grads)
    return jax.tree.map(lambda p, g: p - lr * g, params, grads)


def adapted_weights(policy: MetaPolicy, params, context, episodes: Episodes, lr: float, second_order: bool = False):
    """``task_weights(adapt(policy, params, context, episodes, lr, second_order), context)``: the
    weights the adapted policy runs with on the task, by ``policy.adapted_weights`` where it has one
    (the hyper policy: equal to rounding, without the adapted copy of ``params``)."""
    if policy.adapted_weights is None:
        return policy.task_weights(adapt(policy, params, context, episodes, lr, second_order), context)
    loss = functools.partial(weights_loss, policy, episodes=episodes)
    return policy.adapted_weights(params, context, loss, lr, second_order)


def outer_loss_and_kl(policy: MetaPolicy, params, context, pre: Episodes, post: Episodes, old, lr, second_order):
    """One task's post-adaptation TRPO surrogate and ``KL(adapted || old)``, both means over valid steps.

    ``old``: ``(mean, log_std)`` ``[E*T, act]`` of the adapted policy that collected ``post`` (fixed).
    The KL's order is the authors' (``kl_divergence(pi, old_pi)``); its Hessian at ``old`` is the
    Fisher matrix either way.
    """
    obs, action, advantage, mask = _flat(post)
    mean, log_std = policy.dist(adapted_weights(policy, params, context, pre, lr, second_order), obs)
    old_mean, old_log_std = jax.lax.stop_gradient(old)
    log_ratio = pg.gaussian_log_prob(mean, log_std, action) - pg.gaussian_log_prob(old_mean, old_log_std, action)
    loss = -pg.weighted_mean(jnp.exp(log_ratio) * advantage, mask)
    kl = pg.weighted_mean(pg.gaussian_kl(mean, log_std, old_mean, old_log_std), mask)
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


# ``reverted``: the fraction of the logged iterations whose TRPO step was reverted (the line search
# found no candidate, or the step direction was unusable): the parameters did not move.
METRICS = (
    "train_return_pre",
    "train_return_post",
    "kl",
    "surrogate_gain",
    "line_search_steps",
    "accepted",
    "reverted",
)


class Batch(NamedTuple):
    """One meta-batch of data: ``M`` tasks' episodes before and after adaptation (leaves ``[M, ...]``).

    Attributes:
      tasks: ``[M, task]`` the tasks (what the env was given).
      contexts: ``[M, task]`` their oracle contexts (what the policy was given).
      pre, post: ``Episodes`` before / after the inner step.
      old: ``(mean, log_std)`` ``[M, E*T, act]`` of the adapted policies that collected ``post``.
    """

    tasks: jax.Array
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
      objective: ``(params, Batch) -> (surrogate, kl)``: the means over the meta-batch of each
        task's ``outer_loss_and_kl`` (what ``meta_step`` differentiates).
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
    objective: Callable
    meta_step: Callable
    iteration: Callable
    adaptation: Callable
    returns: Callable


def step_metrics(batch: Batch, info: trpo.TrpoInfo) -> dict:
    """One iteration's ``METRICS`` (scalars) from its data and its TRPO step."""
    accepted = info.accepted.astype(jnp.float32)
    return {
        "train_return_pre": batch.pre.returns.mean(),
        "train_return_post": batch.post.returns.mean(),
        "kl": info.kl,
        "surrogate_gain": info.loss_before - info.loss_after,
        "line_search_steps": info.ls_steps.astype(jnp.float32),
        "accepted": accepted,
        "reverted": 1.0 - accepted,
    }


def make_init(config: MAMLConfig, policy: MetaPolicy, family: meta.TaskFamily) -> Callable:
    """``key -> MAMLState``: the policy's parameters and the seed's task pools."""

    def init(key):
        k_params, k_train, k_test, k_run, k_eval = jax.random.split(key, 5)
        return MAMLState(
            params=policy.init(k_params),
            train_tasks=family.sample_train(k_train, config.num_train_tasks),
            test_tasks=family.sample_test(k_test, config.num_test_tasks),
            key=jax.random.key_data(k_run),
            eval_key=jax.random.key_data(k_eval),
        )

    return init


def make_meta_step(config: MAMLConfig, policy: MetaPolicy) -> tuple[Callable, Callable]:
    """``(objective, meta_step)`` of ``Functions`` (the TRPO outer step on a ``Batch``)."""
    lr, second_order = inner_lr(config), config.second_order
    trpo_config = trpo.TrpoConfig(
        max_kl=config.max_kl,
        cg_iters=config.cg_iters,
        cg_damping=config.cg_damping,
        ls_ratio=config.ls_ratio,
        ls_max_steps=config.ls_max_steps,
    )

    def objective(params, batch: Batch):
        per_task = jax.vmap(outer_loss_and_kl, (None, None, 0, 0, 0, 0, None, None))
        loss, kl = per_task(policy, params, batch.contexts, batch.pre, batch.post, batch.old, lr, second_order)
        return loss.mean(), kl.mean()

    def meta_step(params, batch: Batch):
        loss_and_kl = functools.partial(objective, batch=batch)
        surrogate, kl = (lambda p: loss_and_kl(p)[0]), (lambda p: loss_and_kl(p)[1])
        return trpo.trpo_step(surrogate, kl, params, trpo_config, surrogate_and_kl=loss_and_kl)

    return objective, meta_step


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
    lr = inner_lr(config)
    init = make_init(config, policy, family)

    def one_task(params, task, context, key, episodes):
        """Pre-adaptation episodes, the adapted params, post-adaptation episodes (data only)."""
        task_env = meta.with_task(env, task)
        k_pre, k_post = jax.random.split(key)
        weights = policy.task_weights(params, context)
        pre = process(
            collect_episodes(task_env, policy, weights, k_pre, episodes, length), config.gamma, config.gae_lambda
        )
        post_weights = adapted_weights(policy, params, context, pre, lr)
        trajectory = collect_episodes(task_env, policy, post_weights, k_post, episodes, length)
        baseline = None if config.refit_baseline else pre.baseline  # the authors': fitted on pre
        post = process(trajectory, config.gamma, config.gae_lambda, baseline)
        return pre, post, policy.dist(post_weights, _flat(post)[0])

    def tasks_data(params, tasks, train_pool, key, episodes):
        contexts = family.context(tasks, train_pool)
        tasks, contexts, keys = shard_tasks((tasks, contexts, jax.random.split(key, tasks.shape[0])))
        one = functools.partial(one_task, episodes=episodes)
        pre, post, old = jax.vmap(one, (None, 0, 0, 0))(params, tasks, contexts, keys)
        return shard_tasks(Batch(tasks, contexts, pre, post, jax.lax.stop_gradient(old)))

    def collect(params, train_pool, key):
        k_tasks, k_data = jax.random.split(key)
        tasks = train_pool[jax.random.randint(k_tasks, (config.meta_batch,), 0, train_pool.shape[0])]
        return tasks_data(params, tasks, train_pool, k_data, config.fast_batch)

    objective, meta_step = make_meta_step(config, policy)

    def iteration(state: MAMLState, key: jax.Array):
        batch = collect(state.params, state.train_tasks, key)
        params, info = meta_step(state.params, batch)
        return params, step_metrics(batch, info)

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

    return Functions(init, collect, objective, meta_step, iteration, adaptation, returns)


def train_step(fns: Functions, state: MAMLState) -> tuple[MAMLState, dict]:
    """One meta-iteration of a training run: the state's key advances."""
    key, step_key = jax.random.split(state.rng())
    params, metrics = fns.iteration(state, step_key)
    return state.replace(params=params, key=jax.random.key_data(key)), metrics


def make_trainer(config: MAMLConfig, setting: trainer_lib.Setting) -> trainer_lib.Trainer:
    """MAML's trainer: a training step is one meta-iteration; ``evaluate`` returns the post-
    adaptation return per test task (``[S, N]``) and, as ``return_pre``, the one before adaptation.

    Programs: ``init``, ``run_chunk``, ``evaluate``. With ``--backend=native`` (``setting.env.on_host``)
    the episodes run on MuJoCo's C engine instead: ``maml_host.make_trainer``.
    """
    if setting.env.on_host:
        from hyperjax.agents import maml_host  # noqa: PLC0415 - it imports this module

        return maml_host.make_trainer(config, setting)
    env, family = meta.make(
        setting.env.name,
        episode_length=setting.env.episode_length,
        backend=setting.env.backend,
        **setting.env.model_kwargs,
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


# ``paper``: the authors' code as it ran (the defaults). The others are improvements, each named.
PRESETS = {
    "paper": {},
    "second_order": {"second_order": True},
    "refit_baseline": {"refit_baseline": True},
    "fixed_heading": {"heading_bug": False},
    "improved": {"second_order": True, "refit_baseline": True, "heading_bug": False},
}


def run_name(config: MAMLConfig) -> str:
    """The policy, then a suffix per setting away from the ``paper`` preset's algorithm."""
    return (
        config.policy
        + ("_so" if config.second_order else "")
        + ("_refit" if config.refit_baseline else "")
        + ("" if config.heading_bug else "_xheading")
    )


ALGORITHM = base.Algorithm(
    name="maml",
    config=MAMLConfig,
    make_trainer=make_trainer,
    first_update=lambda config: 0,
    check=check,
    run_name=run_name,
    presets=PRESETS,
    # runs begun before these fields existed were second order with the baseline refitted
    legacy_defaults={"second_order": True, "refit_baseline": True},
    tasks_per_seed=lambda config: config.meta_batch,
    run_defaults={
        "env": "halfcheetah_vel",
        "backend": "auto",  # MuJoCo's C engine on a CPU, MJX on an accelerator
        "total_steps": 400,
        "eval_every": 10,
        "eval_episodes": 20,
        "checkpoint_every": 50,
    },
    step_name="iterations",
    first_call_steps=1,
)
