"""PEARL (Rakelly et al. 2019) as the authors ran it (oyster's soft actor-critic with a V network;
the paper's Section 5.3), with an MLP or a hypernetwork actor-critic (``nn.pearl``).

The ``paper`` preset is each environment's config in the authors' code (``AUTHORS_CONFIGS``, from
``PEARL/configs/<env>.json`` over ``configs/default.py``: the field defaults are the vel tasks', the
dir tasks' differences are ``ENV_PRESETS``, which the CLI applies for ``--env`` through
``Algorithm.env_presets``; explicit flags override), with one exception: the vel tasks train on
100 tasks and test on 30, the counts their configs meant to set; as shipped those counts sat
inside ``env_params`` and the launcher ran 2 / 2 (``--preset=authors_task_counts``).
docs/authors_code.md lists every setting.

One iteration (a training step of the runner) is one XLA program:
1. at the first iteration only, ``num_initial_steps`` per training task with ``z`` from the prior;
2. ``num_tasks_sample`` training tasks drawn with replacement: each draw empties its task's encoder
   buffer, collects ``num_steps_prior`` steps with ``z`` from the prior (into both buffers), then
   ``num_extra_rl_steps_posterior`` steps (into the RL buffer only) whose first trajectory uses a
   prior ``z`` and every later one a posterior ``z`` inferred from a context batch of the
   draw's prior data, which is what the task's encoder buffer then holds (oyster's ``collect_data``;
   ``z`` is redrawn every trajectory). Each phase collects whole trajectories until its step budget
   is met (``collect_trajectories``), as rlkit's ``InPlacePathSampler`` does: the same as
   budget / 200 rollouts on HalfCheetah, more rollouts on Ant when its episodes end early;
3. ``num_train_steps`` gradient steps as one ``lax.scan``, each on ``meta_batch`` tasks x
   ``batch_size`` transitions and ``embedding_batch_size`` context transitions per task.

A gradient step (oyster's ``_take_step``): posterior ``q(z | c)`` = product of the encoder's
Gaussian factors, ``z`` by reparameterised sampling; the encoder and Q step on
``sum_i mean((Q_i(s, a, z) - (scale * r + gamma * d * V_target(s', z)))^2) + kl_lambda * KL(q || N(0, I))``;
V steps towards ``min Q(s, a~pi, z) - log pi`` (with the updated Q); the policy on
``mean(log pi - min Q) + 1e-3 (mean^2 + log_std^2)``; then the target V is Polyak-averaged.
The policy and V see ``z`` detached: the encoder learns through Q (and the KL) only.

Evaluation (oyster's protocol), ``num_evals`` runs per task: deterministic whole trajectories until
``num_steps_per_eval`` steps; ``z`` from the prior for the first ``num_exp_traj_eval`` of them, then
from the posterior over every transition collected so far. ``return`` is the last trajectory's
return on the test tasks; ``return_prior`` the first one's (no task information yet);
``return_train`` the last one's on as many training tasks (drawn with replacement).

Shapes (per seed): ``P`` training tasks, ``N`` test tasks, ``M`` tasks per step, ``B`` transitions.
"""

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import flax
import jax
import jax.numpy as jnp
import numpy as np
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
# The authors' learning rates per model (q, v, policy); the encoder's is 3e-4 for both
# (PEARL/torch/sac/sac.py: hyper -> hyper_lr 5e-5 for Q and V, 1e-4 hard-coded for the policy;
# mlp -> qf_lr, vf_lr, policy_lr = 3e-4 from configs/default.py; context_lr 3e-4 for both).
LEARNING_RATES = {"mlp": (3e-4, 3e-4, 3e-4), "hyper": (5e-5, 5e-5, 1e-4)}

# The authors' per-environment settings (PEARL/configs/*.json over configs/default.py). Fields of
# PEARLConfig left unset take these for the run's --env; envs they did not run take the vel ones.
_VEL = dict(  # cheetah-vel.json = ant-vel.json = cheetah-vel-medium.json
    num_train_tasks=100,  # env_params n_train_tasks (the intent; shipped runs used 2: authors_task_counts)
    num_test_tasks=30,  # env_params n_eval_tasks
    meta_batch=16,
    num_steps_prior=400,
    num_extra_rl_steps_posterior=600,
    num_train_steps=2000,  # default.py num_train_steps_per_itr
    embedding_batch_size=100,
    num_evals=1,
)
_DIR = dict(  # n_tasks 2 and the launcher's 2 / 2: train = test = the directions [-1, +1]
    num_train_tasks=2,
    num_test_tasks=2,
    meta_batch=4,  # default.py (neither dir json sets it)
    embedding_batch_size=256,
)
AUTHORS_CONFIGS: dict[str, dict[str, int]] = {
    "halfcheetah_vel": _VEL,
    "halfcheetah_vel_medium": _VEL,
    "ant_vel": _VEL,
    # cheetah-dir.json: 1,000 prior + 1,000 posterior steps, num_evals 4
    "halfcheetah_fwd_back": {
        **_DIR,
        "num_steps_prior": 1000,
        "num_extra_rl_steps_posterior": 1000,
        "num_train_steps": 2000,
        "num_evals": 4,
    },
    # ant-dir.json: 4,000 gradient steps per iteration, num_evals 2 (default.py)
    "ant_fwd_back": {
        **_DIR,
        "num_steps_prior": 400,
        "num_extra_rl_steps_posterior": 600,
        "num_train_steps": 4000,
        "num_evals": 2,
    },
}
PER_ENV_FIELDS = tuple(_VEL)
# The dir tasks are exactly the authors' list of directions, [-1, +1] (repeated), for training and
# testing alike (half_cheetah_dir.py, ant_dir.py), not Bernoulli draws.
DIRECTION_FAMILIES = ("halfcheetah_fwd_back", "ant_fwd_back")
# The oracle context is normalised over all tasks the authors' env drew (train and test:
# half_cheetah_vel.py, ant_vel.py, the dir envs), except on vel-medium (its get_norm(train tasks)).
TRAIN_POOL_ONLY = ("halfcheetah_vel_medium",)
# Families none of whose episodes ends before its time limit (HalfCheetah never terminates:
# envs/gym_tasks.py, envs/locomotion.py, envs/native_meta.py): a phase's first ceil(budget / T)
# trajectories meet its budget, so collect_trajectories compiles no loop for more (it would never run).
ENDLESS = ("halfcheetah_vel", "halfcheetah_vel_medium", "halfcheetah_fwd_back")
# All training tasks' RL buffers together hold at most this many transitions per seed: the
# authors' 1,000,000 per task up to 5 training tasks; 50,000 at the paper's 100 tasks, more than
# any task receives in 400 iterations (about 20,000 on average).
MAX_REPLAY_TRANSITIONS = 5_000_000


def _per_env(what: str) -> str:
    values = {}
    for env, table in AUTHORS_CONFIGS.items():
        values.setdefault(table[what], []).append(env)
    return "; ".join(f"{v} ({', '.join(envs)})" for v, envs in values.items())


@dataclasses.dataclass
class PEARLConfig:
    """PEARL hyperparameters; defaults are the authors' vel-task config (``ENV_PRESETS``: the dir
    tasks'; docs/authors_code.md, PEARL)."""

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
        100, f"Training tasks (paper: {_per_env('num_train_tasks')}).", valid=cfg.POSITIVE_INT
    )
    num_test_tasks: int = cfg.field(30, f"Test tasks (paper: {_per_env('num_test_tasks')}).", valid=cfg.POSITIVE_INT)
    num_initial_steps: int = cfg.field(
        2000, "Env steps per training task before the first iteration (paper: 2000).", valid=cfg.POSITIVE_INT
    )
    num_tasks_sample: int = cfg.field(
        5, "Training tasks drawn (with replacement) for collection per iteration (paper: 5).", valid=cfg.POSITIVE_INT
    )
    num_steps_prior: int = cfg.field(
        400,
        f"Steps per drawn task with z from the prior (paper: {_per_env('num_steps_prior')}).",
        valid=cfg.POSITIVE_INT,
    )
    num_extra_rl_steps_posterior: int = cfg.field(
        600,
        "Further steps per drawn task, posterior z, RL buffer only "
        f"(paper: {_per_env('num_extra_rl_steps_posterior')}).",
        valid=cfg.NON_NEGATIVE,
    )
    num_train_steps: int = cfg.field(
        2000, f"Gradient steps per iteration (paper: {_per_env('num_train_steps')}).", valid=cfg.POSITIVE_INT
    )
    meta_batch: int = cfg.field(
        16, f"Tasks per gradient step (paper: {_per_env('meta_batch')}).", valid=cfg.POSITIVE_INT
    )
    batch_size: int = cfg.field(256, "RL transitions per task per step (paper: 256).", valid=cfg.POSITIVE_INT)
    embedding_batch_size: int = cfg.field(
        100,
        f"Context transitions per task per step (paper: {_per_env('embedding_batch_size')}).",
        valid=cfg.POSITIVE_INT,
    )
    num_steps_per_eval: int = cfg.field(
        600, "Env steps per evaluation run, whole trajectories (paper: 600).", valid=cfg.POSITIVE_INT
    )
    num_exp_traj_eval: int = cfg.field(
        2, "Evaluation trajectories before the posterior is used (paper: 2).", valid=cfg.POSITIVE_INT
    )
    num_evals: int = cfg.field(
        1, f"Evaluation runs per task (oyster's num_evals) (paper: {_per_env('num_evals')}).", valid=cfg.POSITIVE_INT
    )
    heading_bug: bool = cfg.field(
        True, "ant_fwd_back: the authors' headings of +-1 rad (their ant_dir.py); false: the intended +-x."
    )


# The dir tasks' differences from the defaults (the vel tasks'), per preset: Algorithm.env_presets.
ENV_PRESETS = {
    env: {k: v for k, v in table.items() if v != _VEL[k]} for env, table in AUTHORS_CONFIGS.items() if table != _VEL
}


def replay_capacity(config: PEARLConfig, buffer_size: int) -> int:
    """RL transitions kept per training task: ``--buffer_size`` (per task; the authors': 1,000,000),
    at most ``MAX_REPLAY_TRANSITIONS`` over all training tasks."""
    return min(buffer_size, MAX_REPLAY_TRANSITIONS // config.num_train_tasks)


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
    the run's key. Keys are raw key data (``rng()`` / ``eval_rng()`` wrap them).

    An iteration stopped in its gradient steps (the native path, ``agents/pearl_host.py``) is kept
    in the state: its data stored, ``key`` advanced, ``pending`` (int32 ``[]``) gradient steps still
    to run with the keys ``split(train_key, num_train_steps)[num_train_steps - pending:]``, and
    ``iteration_sums`` (``{metric: []}``) its collection stats and the sums of the metrics of its
    gradient steps so far (``Functions.train_steps``). ``pending`` is 0 between iterations.
    """

    params: dict
    target_v: Any
    opt_state: dict
    replay: replay_lib.Replay
    context_replay: replay_lib.Replay
    train_tasks: jax.Array
    test_tasks: jax.Array
    key: jax.Array
    eval_key: jax.Array
    train_key: jax.Array
    pending: jax.Array
    iteration_sums: dict

    def rng(self) -> jax.Array:
        return jax.random.wrap_key_data(self.key)

    def eval_rng(self) -> jax.Array:
        return jax.random.wrap_key_data(self.eval_key)


METRICS = ("train_return", "collect_steps", "q_loss", "v_loss", "policy_loss", "kl", "z_variance", "entropy", "q")
COLLECTION_STATS = ("train_return", "collect_steps")  # per iteration; the others are means over its gradient steps


def iteration_metrics(config: PEARLConfig, sums: dict) -> dict:
    """An iteration's metrics from its ``PEARLState.iteration_sums`` once its gradient steps are all
    run: the collection stats as they are, the gradient steps' metrics as means (any leading axes)."""
    return {k: v if k in COLLECTION_STATS else v / config.num_train_steps for k, v in sums.items()}


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
      collect: ``(state, key) -> (state, {"train_return", "collect_steps"})``: one iteration's data.
      train: ``(state, key) -> (state, metrics)``: ``num_train_steps`` gradient steps (a scan).
      pend_training: ``(state, key, stats) -> state``: the iteration's gradient steps pending, from
        ``key`` (``train``'s), its collection ``stats`` in ``iteration_sums``.
      train_steps: ``(state, count) -> state``: the next ``count`` (<= ``pending``) of them, the same
        keys and updates as ``train``'s scan; one program for every ``count``.
      gradient_step: ``(params, target_v, opt_state, replay, context_replay, train_contexts [P, ctx],
        key) -> (params, target_v, opt_state, metrics)``: one step (``sample`` then ``update``).
      sample: ``(replay, context_replay, train_contexts, key) -> data`` (``Losses``' data).
      update: ``(params, target_v, opt_state, data) -> (params, target_v, opt_state, metrics)``.
      evaluate: ``(params, tasks [N, task], pool [Q, task], key, runs) -> Evaluation`` (means over
        ``runs`` independent runs per task, oyster's ``num_evals``); ``pool``: the tasks whose
        statistics normalise the oracle context (``context_pool``).
      collect_trajectories: ``(params, tasks [M, task], rows, budget, choose_z, key) -> Phase``.
      parts: the pieces of the collection and evaluation (``Parts``).
      evaluate_runs: ``(params, tasks [N, task], contexts [N, ctx], keys [N, runs]) -> Evaluation``.
    """

    init: Callable
    initial_collection: Callable
    collect: Callable
    train: Callable
    pend_training: Callable
    train_steps: Callable
    gradient_step: Callable
    sample: Callable
    update: Callable
    evaluate: Callable
    collect_trajectories: Callable
    parts: "Parts"
    evaluate_runs: Callable


class Parts(NamedTuple):
    """The pieces ``collect_trajectories``, ``initial_collection``, ``collect`` and ``evaluate`` are
    made of, for a collection whose rollouts run outside XLA (``agents/pearl_host.py``): composed
    as those functions compose them, they give the same values from the same keys.

    Attributes:
      nets: the ``pearl.Networks``.
      transitions_of: ``Trajectory [T] -> (Transition [T], valid [T], return)``.
      phase_start: ``(transitions, valid, returns [M, K, T...], budget) -> (Kept, Tally)``.
      phase_add: ``(Tally, start [M], budget, transitions, valid, returns [M, T...]) -> Tally``.
      phase_end: ``(Kept, Tally) -> Phase``.
      prior_choice, posterior_choice: the ``choose_z`` of the prior phase, and ``params -> choose_z``.
      initial_draw: ``state -> (key, tasks, contexts, data key)``; initial_store: ``(state, key, Phase) -> state``.
      draw: ``(state, key) -> (ids, tasks, contexts, prior key, posterior key)``;
        store: ``(state, ids, phases) -> (state, stats)``.
      oracle: ``(tasks, pool) -> contexts``.
      eval_carry: ``key -> carry``; eval_choose: ``(params, carry, context) -> (z, rollout key, key)``;
        eval_record: ``(carry, key, transitions, valid, return) -> carry``.
    """

    nets: pearl.Networks
    transitions_of: Callable
    phase_start: Callable
    phase_add: Callable
    phase_end: Callable
    prior_choice: Callable
    posterior_choice: Callable
    initial_draw: Callable
    initial_store: Callable
    draw: Callable
    store: Callable
    oracle: Callable
    eval_carry: Callable
    eval_choose: Callable
    eval_record: Callable


class Phase(NamedTuple):
    """Whole trajectories per task until a step budget is met (``M`` tasks, ``L`` slots each).

    transitions: leaves ``[M, L, ...]``; valid: ``[M, L]`` the collected steps (trajectories in
    order, each a run of valid slots); returns: ``[M]`` summed returns of the trajectories;
    trajectories: ``[M]`` how many; steps: ``[M]`` how many transitions (>= the budget).
    """

    transitions: types.Transition
    valid: jax.Array
    returns: jax.Array
    trajectories: jax.Array
    steps: jax.Array


class Kept(NamedTuple):
    """A phase's first trajectories, those that started before its budget was met:
    ``transitions`` leaves ``[M, K * T, ...]``, ``valid [M, K * T]``, ``steps [M]``."""

    transitions: types.Transition
    valid: jax.Array
    steps: jax.Array


class Tally(NamedTuple):
    """A phase's extra trajectories so far (``E = budget + T`` slots per task): ``more`` leaves
    ``[M, E, ...]``, ``more_valid [M, E]``; the phase's ``steps``, ``total`` return and trajectory
    ``count``, each ``[M]``."""

    more: types.Transition
    more_valid: jax.Array
    steps: jax.Array
    total: jax.Array
    count: jax.Array


class Evaluation(NamedTuple):
    """Per task, means over runs: ``first`` and ``last`` trajectory's return ``[N]``, ``trajectories [N]``."""

    first: jax.Array
    last: jax.Array
    trajectories: jax.Array


def nominal_trajectories(steps: int, length: int) -> int:
    """Rollouts that meet a budget of ``steps`` when no episode ends early."""
    return -(-steps // length)


def sample_valid(transitions: types.Transition, valid: jax.Array, key: jax.Array, num: int) -> types.Transition:
    """``num`` of the valid transitions ``[L]``, uniformly with replacement (a replay buffer's
    sample, as oyster's ``random_batch``): leaves ``[num, ...]``."""
    order = jnp.argsort(~valid, stable=True)  # the valid slots first, in order
    idx = order[jax.random.randint(key, (num,), 0, jnp.maximum(valid.sum(), 1))]
    return jax.tree.map(lambda x: x[idx], transitions)


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
    context_capacity = max(config.num_initial_steps, config.num_steps_prior) + length - 1
    example = types.Transition(
        obs=jnp.zeros(obs_size),
        action=jnp.zeros(action_size),
        reward=jnp.zeros(()),
        discount=jnp.zeros(()),
        next_obs=jnp.zeros(obs_size),
    )

    def tasks_of(key, num, sample):
        if family.name in DIRECTION_FAMILIES:  # the authors' list: -1, +1, -1, ...
            return jnp.where(jnp.arange(num) % 2 == 0, -1.0, 1.0)[:, None].astype(jnp.float32)
        return sample(key, num)

    def init(key):
        k_params, k_train, k_test, k_run, k_eval = jax.random.split(key, 5)
        params = nets.init(k_params)
        return PEARLState(
            params=params,
            target_v=jax.tree.map(jnp.copy, params["v"]),
            opt_state={name: opt.init(params[name]) for name, opt in optimizers.items() if name in params},
            replay=replay_lib.init_per_task(config.num_train_tasks, capacity, example),
            context_replay=replay_lib.init_per_task(config.num_train_tasks, context_capacity, example),
            train_tasks=tasks_of(k_train, config.num_train_tasks, family.sample_train),
            test_tasks=tasks_of(k_test, config.num_test_tasks, family.sample_test),
            key=jax.random.key_data(k_run),
            eval_key=jax.random.key_data(k_eval),
            train_key=jnp.zeros_like(jax.random.key_data(k_run)),
            pending=jnp.zeros((), jnp.int32),
            iteration_sums={k: jnp.zeros(()) for k in METRICS},
        )

    # --- acting -------------------------------------------------------------------------------

    def posterior_z(params, context, mask, key):
        mean, variance = pearl.product_of_gaussians(*nets.encode(params, context), mask)
        return mean + jnp.sqrt(variance) * jax.random.normal(key, mean.shape)

    def prior_z(key):
        return jax.random.normal(key, (latent_size,))

    def transitions_of(traj: rollout_lib.Trajectory):
        """A rollout ``[T]`` -> ``(Transition [T], valid [T], return)`` (the first episode's steps)."""
        valid = rollout_lib.valid_mask(traj.done)
        transitions = types.Transition(
            obs=traj.obs,
            action=traj.action,
            reward=jnp.where(valid, traj.reward, 0.0),
            discount=1.0 - traj.done * (1.0 - traj.truncation),
            next_obs=traj.next_obs,
        )
        return transitions, valid, rollout_lib.episode_return(traj)

    def run_trajectory(params, task, z, key, deterministic):
        """One trajectory of ``task`` with latent ``z``: ``(Transition [T], valid [T], return)``."""

        def act(weights, obs, k):
            mean, log_std = nets.policy_dist(weights, obs[None])
            if deterministic:
                return jnp.tanh(mean[0])
            return policies.sample_tanh_gaussian(k, mean, log_std)[0][0]

        weights = nets.policy_weights(params, z)  # the hyper policy's primary network: once per trajectory
        return transitions_of(rollout_lib.rollout(meta.with_task(env, task), act, weights, key, length))

    def oracle(tasks, pool):
        return family.context(tasks, pool)

    # --- data collection ----------------------------------------------------------------------

    def collect_trajectories(params, tasks, rows, budget: int, choose_z: Callable, key) -> Phase:
        """Per task, stochastic whole trajectories until ``budget`` steps (rlkit's ``obtain_samples``
        with ``max_samples``): the ``ceil(budget / T)`` that meet it when no episode ends early run
        in parallel, then, while a task is short (an Ant fell), one more at a time. (Measured under
        an untrained policy on Gym's Ant, C engine: 93% of episodes end before 200 steps, mean 70,
        so budget / 200 fixed rollouts would collect about 35% of each budget.)

        ``rows``: per-task inputs of ``choose_z`` (leading axis ``[M]``); ``choose_z(row, index,
        key) -> z`` for the task's trajectory number ``index``.
        """
        first = nominal_trajectories(budget, length)

        def one(row, task, index, k):
            k_z, k_run = jax.random.split(k)
            return run_trajectory(params, task, choose_z(row, index, k_z), k_run, False)

        k_first, k_more = jax.random.split(key)
        keys = jax.random.split(k_first, (tasks.shape[0], first))
        index = jnp.arange(first)
        first_runs = jax.vmap(jax.vmap(one, (None, None, 0, 0)), (0, 0, None, 0))(rows, tasks, index, keys)
        kept, tally = phase_start(*first_runs, budget)  # [M, K, T] runs
        if family.name in ENDLESS:  # the first trajectories always meet the budget: no loop to compile
            return phase_end(kept, tally)

        def short(carry):
            return jnp.any(carry[0].steps < budget)

        def another(carry):
            tally, index, key = carry
            key, k = jax.random.split(key)
            runs = jax.vmap(one, (0, 0, None, 0))(rows, tasks, index, jax.random.split(k, tasks.shape[0]))
            return phase_add(tally, kept.steps, budget, *runs), index + 1, key

        tally, _, _ = jax.lax.while_loop(short, another, (tally, first, k_more))
        return phase_end(kept, tally)

    def phase_start(transitions, valid, returns, budget: int) -> tuple[Kept, Tally]:
        """The first ``K`` trajectories per task ``[M, K, T]``: those that started before the budget
        was met, flattened to ``[M, K * T]``, and the empty slots of the extra ones."""
        lengths = valid.sum(-1)
        kept = jnp.cumsum(lengths, -1) - lengths < budget  # started before the budget was met
        valid = valid & kept[..., None]
        steps = jnp.sum(lengths * kept, -1)
        flat = lambda x: x.reshape(x.shape[0], -1, *x.shape[3:])  # noqa: E731
        transitions, valid = jax.tree.map(flat, (transitions, valid))

        # the rare extra trajectories (never on HalfCheetah): packed after one another
        extra = budget + length
        more = jax.tree.map(lambda x: jnp.zeros((valid.shape[0], extra, *x.shape[2:]), x.dtype), transitions)
        more_valid = jnp.zeros((valid.shape[0], extra), bool)
        tally = Tally(more, more_valid, steps, jnp.sum(returns * kept, -1), kept.sum(-1))
        return Kept(transitions, valid, steps), tally

    def phase_add(tally: Tally, start, budget: int, t, v, r) -> Tally:
        """One more trajectory per task (``[M, T]``), kept for the tasks still short of the budget;
        ``start [M]``: the steps of the first trajectories (where the extra slots begin)."""
        more, more_valid, steps, total, count = tally
        place = jax.vmap(lambda buf, x, at: jax.lax.dynamic_update_slice_in_dim(buf, x, at, 0))

        def rows_of(flag, like):  # [M] -> broadcastable against like [M, ...]
            return flag.reshape(-1, *([1] * (like.ndim - 1)))

        take = steps < budget
        at = steps - start
        more = jax.tree.map(lambda b, x: jnp.where(rows_of(take, b), place(b, x, at), b), more, t)
        more_valid = jnp.where(take[:, None], place(more_valid, v, at), more_valid)
        steps = steps + take * v.sum(-1)
        return Tally(more, more_valid, steps, total + take * r, count + take)

    def phase_end(kept: Kept, tally: Tally) -> Phase:
        transitions = jax.tree.map(lambda a, b: jnp.concatenate([a, b], 1), kept.transitions, tally.more)
        valid = jnp.concatenate([kept.valid, tally.more_valid], 1)
        return Phase(transitions, valid, tally.total, tally.count, tally.steps)

    def prior_choice(context, index, key):
        del index
        return prior_z(key) if use_encoder else context

    def posterior_choice(params):
        """The first trajectory from the prior (oyster's ``clear_z``), then the posterior given a
        context batch of the draw's prior data (the task's encoder buffer just then)."""

        def choose(row, index, key):
            context, prior_transitions, prior_valid = row
            if not use_encoder:
                return context
            k_ctx, k_post, k_prior = jax.random.split(key, 3)
            sample = sample_valid(prior_transitions, prior_valid, k_ctx, config.embedding_batch_size)
            z_post = posterior_z(params, context_features(sample), None, k_post)
            return jnp.where(index == 0, prior_z(k_prior), z_post)

        return choose

    def initial_draw(state: PEARLState):
        """The initial collection's inputs: ``(next key, tasks [P, task], contexts [P, ctx], data key)``."""
        key, k_data = jax.random.split(state.rng())
        contexts = oracle(state.train_tasks, context_pool(family.name, state.train_tasks, state.test_tasks))
        train_tasks, contexts = shard_tasks((state.train_tasks, contexts))
        return key, train_tasks, contexts, k_data

    def initial_store(state: PEARLState, key, phase: Phase) -> PEARLState:
        """The initial phase into every training task's buffers; the state's key advances to ``key``."""
        tasks = jnp.arange(config.num_train_tasks)
        return state.replace(
            replay=replay_lib.add_to_tasks(state.replay, tasks, phase.transitions, phase.valid),
            context_replay=replay_lib.add_to_tasks(state.context_replay, tasks, phase.transitions, phase.valid),
            key=jax.random.key_data(key),
        )

    def initial_collection(state: PEARLState) -> PEARLState:
        key, train_tasks, contexts, k_data = initial_draw(state)
        phase = collect_trajectories(
            state.params, train_tasks, contexts, config.num_initial_steps, prior_choice, k_data
        )
        return initial_store(state, key, phase)

    def draw(state: PEARLState, key):
        """``collect``'s draws: ``(ids [D], tasks [D, task], contexts [D, ctx], prior key, posterior key)``."""
        k_tasks, k_prior, k_post = jax.random.split(key, 3)
        ids = jax.random.randint(k_tasks, (config.num_tasks_sample,), 0, config.num_train_tasks)
        tasks = state.train_tasks[ids]
        contexts = oracle(tasks, context_pool(family.name, state.train_tasks, state.test_tasks))
        tasks, contexts = shard_tasks((tasks, contexts))
        return ids, tasks, contexts, k_prior, k_post

    def store(state: PEARLState, ids, phases: Sequence[Phase]):
        """The draws' phases into the buffers, draw after draw as oyster does: ``(state, stats)``."""

        def write(buffers, draw):
            replay, context_replay = buffers
            task, written = draw[0][None], [jax.tree.map(lambda x: x[None], d) for d in draw[1:]]
            context_replay = replay_lib.clear_tasks(context_replay, task)
            context_replay = replay_lib.add_to_tasks(context_replay, task, *written[0])
            for transitions, valid in written:
                replay = replay_lib.add_to_tasks(replay, task, transitions, valid)
            return (replay, context_replay), None

        draws = (ids, *[(p.transitions, p.valid) for p in phases])
        (replay, context_replay), _ = jax.lax.scan(write, (state.replay, state.context_replay), draws)
        returns = sum(p.returns.sum() for p in phases) / sum(p.trajectories.sum() for p in phases)
        steps = sum(p.steps.sum() for p in phases).astype(jnp.float32)
        stats = {"train_return": returns, "collect_steps": steps}
        return state.replace(replay=replay, context_replay=context_replay), stats

    def collect(state: PEARLState, key):
        """``num_tasks_sample`` draws (with replacement, oyster's ``np.random.randint``): prior phase,
        then posterior phase; the buffers written draw after draw as oyster does."""
        ids, tasks, contexts, k_prior, k_post = draw(state, key)
        prior = collect_trajectories(state.params, tasks, contexts, config.num_steps_prior, prior_choice, k_prior)
        phases = [prior]
        if config.num_extra_rl_steps_posterior > 0:
            rows = (contexts, prior.transitions, prior.valid)
            phases.append(
                collect_trajectories(
                    state.params,
                    tasks,
                    rows,
                    config.num_extra_rl_steps_posterior,
                    posterior_choice(state.params),
                    k_post,
                )
            )
        return store(state, ids, phases)

    # --- learning -----------------------------------------------------------------------------

    def sample(replay, context_replay, train_contexts, key):
        k_tasks, k_ctx, k_batch, k_z, k_act = jax.random.split(key, 5)
        ids = jax.random.randint(k_tasks, (config.meta_batch,), 0, config.num_train_tasks)
        context = context_features(
            replay_lib.sample_from_tasks(context_replay, k_ctx, ids, config.embedding_batch_size)
        )
        batch = replay_lib.sample_from_tasks(replay, k_batch, ids, config.batch_size)
        data = (
            batch,
            context,
            train_contexts[ids],
            jax.random.normal(k_z, (config.meta_batch, latent_size)),
            jax.random.normal(k_act, batch.action.shape),
        )
        return shard_tasks(data)  # every leaf [meta_batch, ...]

    def update(params, target_v, opt_state, data):
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

    def gradient_step(params, target_v, opt_state, replay, context_replay, train_contexts, key):
        return update(params, target_v, opt_state, sample(replay, context_replay, train_contexts, key))

    def train(state: PEARLState, key):
        train_contexts = oracle(state.train_tasks, context_pool(family.name, state.train_tasks, state.test_tasks))

        def body(carry, k):
            params, target_v, opt_state = carry
            params, target_v, opt_state, metrics = gradient_step(
                params, target_v, opt_state, state.replay, state.context_replay, train_contexts, k
            )
            return (params, target_v, opt_state), metrics

        carry = (state.params, state.target_v, state.opt_state)
        (params, target_v, opt_state), metrics = jax.lax.scan(
            body, carry, jax.random.split(key, config.num_train_steps)
        )
        state = state.replace(params=params, target_v=target_v, opt_state=opt_state)
        return state, jax.tree.map(jnp.mean, metrics)

    def pend_training(state: PEARLState, key, stats: dict) -> PEARLState:
        """``num_train_steps`` gradient steps pending from ``key`` (``train``'s); ``stats``: the
        iteration's collection stats, kept in ``iteration_sums`` with zero sums for the others."""
        sums = {k: jnp.asarray(stats[k], jnp.float32) if k in stats else jnp.zeros(()) for k in METRICS}
        pending = jnp.asarray(config.num_train_steps, jnp.int32)
        return state.replace(train_key=jax.random.key_data(key), pending=pending, iteration_sums=sums)

    def train_steps(state: PEARLState, count) -> PEARLState:
        """The next ``count`` (int32 ``[]``, at most ``state.pending``) of the pending gradient steps:
        step ``i = num_train_steps - pending + j`` uses key ``i`` of ``split(train_key, num_train_steps)``,
        as ``train``'s scan; their metrics added to ``iteration_sums``. A ``fori_loop`` of run-time
        length: one program for every ``count`` (keep ``count`` unbatched under ``vmap``)."""
        train_contexts = oracle(state.train_tasks, context_pool(family.name, state.train_tasks, state.test_tasks))
        keys = jax.random.split(jax.random.wrap_key_data(state.train_key), config.num_train_steps)
        first = config.num_train_steps - state.pending

        def body(j, carry):
            params, target_v, opt_state, sums = carry
            params, target_v, opt_state, metrics = gradient_step(
                params, target_v, opt_state, state.replay, state.context_replay, train_contexts, keys[first + j]
            )
            return params, target_v, opt_state, {**sums, **{k: sums[k] + v for k, v in metrics.items()}}

        carry = (state.params, state.target_v, state.opt_state, state.iteration_sums)
        params, target_v, opt_state, sums = jax.lax.fori_loop(0, count, body, carry)
        return state.replace(
            params=params,
            target_v=target_v,
            opt_state=opt_state,
            iteration_sums=sums,
            pending=state.pending - count,
        )

    # --- evaluation ---------------------------------------------------------------------------

    def eval_carry(key):
        """One evaluation run's loop state: ``(features [S, ctx], mask [S], steps, index, first, last, key)``
        (``S`` = budget + T slots: the last trajectory starts before the budget is met)."""
        slots = config.num_steps_per_eval + length
        zero = jnp.zeros(())
        return (jnp.zeros((slots, obs_size + action_size + 1)), jnp.zeros(slots), 0, 0, zero, zero, key)

    def eval_choose(params, carry, context):
        """The next trajectory's ``(z, rollout key, loop key)``: the prior until ``num_exp_traj_eval``
        trajectories exist, then the posterior over every transition so far (oracle: the context)."""
        features, mask, _, index, _, _, key = carry
        key, k_post, k_prior, k_run = jax.random.split(key, 4)
        if use_encoder:  # the prior until num_exp_traj_eval trajectories exist
            informed = index >= config.num_exp_traj_eval
            z = jnp.where(informed, posterior_z(params, features, mask, k_post), prior_z(k_prior))
        else:
            z = context
        return z, k_run, key

    def eval_record(carry, key, transitions, valid, ret):
        """The loop state after one trajectory (``transitions_of``'s ``[T]`` outputs)."""
        features, mask, steps, index, first, _, _ = carry
        features = jax.lax.dynamic_update_slice_in_dim(features, context_features(transitions), steps, 0)
        mask = jax.lax.dynamic_update_slice_in_dim(mask, valid.astype(jnp.float32), steps, 0)
        first = jnp.where(index == 0, ret, first)
        return features, mask, steps + valid.sum(), index + 1, first, ret, key

    def evaluate(params, tasks, pool, key, runs) -> Evaluation:
        """Oyster's ``collect_paths``, ``runs`` times per task (one trajectory per loop turn)."""
        contexts = oracle(tasks, pool)
        return evaluate_runs(params, tasks, contexts, jax.random.split(key, (tasks.shape[0], runs)))

    def evaluate_runs(params, tasks, contexts, keys) -> Evaluation:
        """``evaluate`` with its contexts ``[N, ctx]`` and run keys ``[N, runs]`` given (one program
        evaluates several task sets at once: one MJX rollout to compile, not one per set)."""
        budget = config.num_steps_per_eval

        def one(task, context, key):
            def more(carry):
                return carry[2] < budget

            def body(carry):
                z, k_run, key = eval_choose(params, carry, context)
                transitions, valid, ret = run_trajectory(params, task, z, k_run, True)
                return eval_record(carry, key, transitions, valid, ret)

            _, _, _, count, first, last, _ = jax.lax.while_loop(more, body, eval_carry(key))
            return first, last, count.astype(jnp.float32)

        tasks, contexts, keys = shard_tasks((tasks, contexts, keys))
        out = jax.vmap(jax.vmap(one, (None, None, 0)))(tasks, contexts, keys)
        return Evaluation(*(x.mean(1) for x in out))

    return Functions(
        init,
        initial_collection,
        collect,
        train,
        pend_training,
        train_steps,
        gradient_step,
        sample,
        update,
        evaluate,
        collect_trajectories,
        Parts(
            nets,
            transitions_of,
            phase_start,
            phase_add,
            phase_end,
            prior_choice,
            posterior_choice,
            initial_draw,
            initial_store,
            draw,
            store,
            oracle,
            eval_carry,
            eval_choose,
            eval_record,
        ),
        evaluate_runs,
    )


def context_pool(family_name: str, train_tasks: jax.Array, test_tasks: jax.Array) -> jax.Array:
    """The tasks whose statistics normalise the oracle context: all the env drew, train and test
    (the authors' PEARL envs), but the training tasks on ``TRAIN_POOL_ONLY`` families."""
    if family_name in TRAIN_POOL_ONLY:
        return train_tasks
    return jnp.concatenate([train_tasks, test_tasks])


def iteration(fns: Functions, state: PEARLState) -> tuple[PEARLState, dict]:
    """One training iteration after the initial collection: collect, then the gradient steps."""
    key, k_collect, k_train = jax.random.split(state.rng(), 3)
    state, stats = fns.collect(state, k_collect)
    state, metrics = fns.train(state, k_train)
    return state.replace(key=jax.random.key_data(key)), {**metrics, **stats}


def make_env(config: PEARLConfig, setting: trainer_lib.Setting):
    """``(env, family)`` of the run."""
    return meta.make(
        setting.env.name,
        episode_length=setting.env.episode_length,
        backend=setting.env.backend,
        **setting.env.model_kwargs,
        heading_bug=config.heading_bug,
    )


def make_trainer(config: PEARLConfig, setting: trainer_lib.Setting) -> trainer_lib.Trainer:
    """PEARL's trainer: a training step is one iteration; ``evaluate`` returns the test tasks'
    last-trajectory return ``[S, N]``, with ``return_prior`` (first trajectory) and
    ``return_train`` (last trajectory on as many training tasks, drawn with replacement).

    Programs: ``init``, ``initial_collection`` (run by the first training call from step 0),
    ``run_chunk``, ``evaluate``. With ``--backend=native`` (``setting.env.on_host``) the rollouts
    run on MuJoCo's C engine instead: ``pearl_host.make_trainer``.
    """
    if setting.env.on_host:
        from hyperjax.agents import pearl_host  # noqa: PLC0415 - it imports this module

        return pearl_host.make_trainer(config, setting)
    env, family = make_env(config, setting)
    layout = trainer_lib.SeedLayout(setting.num_seeds, num_tasks=config.meta_batch)
    fns = make_functions(config, env, family, replay_capacity(config, setting.buffer_size), layout.shard_tasks)
    init, init_program = layout.init(fns.init)

    run_one = trainer_lib.repeated(
        lambda state: iteration(fns, state), METRICS, lambda state: (state.params, state.target_v)
    )

    def evaluate_one(state: PEARLState, step):
        """The test tasks and as many training tasks in one ``evaluate_runs`` (one rollout to
        compile; each task's runs as ``evaluate`` gives them for its key)."""
        k_test, k_train, k_subset = jax.random.split(jax.random.fold_in(state.eval_rng(), step), 3)
        pool = context_pool(family.name, state.train_tasks, state.test_tasks)
        subset = jax.random.randint(k_subset, (config.num_test_tasks,), 0, config.num_train_tasks)
        n, runs = config.num_test_tasks, config.num_evals
        tasks = jnp.concatenate([state.test_tasks, state.train_tasks[subset]])
        keys = jnp.concatenate([jax.random.split(k_test, (n, runs)), jax.random.split(k_train, (n, runs))])
        both = fns.evaluate_runs(state.params, tasks, fns.parts.oracle(tasks, pool), keys)
        return {"return": both.last[:n], "return_prior": both.first[:n], "return_train": both.last[n:]}

    initial_program = layout.program(fns.initial_collection, 0, donate=True)
    run_program = layout.program(run_one, (0, None, None), donate=True)
    eval_program = layout.program(evaluate_one, (0, None))

    def run_chunk(state, start_step, num_steps):
        if np.asarray(state.pending).max() > 0:
            raise ValueError(
                f"this state stopped in iteration {start_step + 1}'s gradient steps on the native path: "
                "resume it with --backend=native"
            )
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
    """Meta tasks only; buffers that hold one collection. (``--eval_episodes`` is not read: the
    evaluation runs per task are ``--num_evals``, per env as the authors'.)"""
    if not registry.is_meta(setting.env.name):
        raise ValueError(f"--env={setting.env.name} is not a meta task; valid: {', '.join(registry.META_ENVS)}")
    length = setting.env.episode_length or meta.FAMILIES[setting.env.name].default_episode_length
    trajectories = nominal_trajectories(config.num_steps_per_eval, length)
    if config.num_exp_traj_eval > trajectories:
        raise ValueError(
            f"--num_exp_traj_eval={config.num_exp_traj_eval} exceeds the {trajectories} trajectories "
            "of --num_steps_per_eval"
        )
    # one phase's whole trajectories end at most length - 1 steps past its budget
    largest = max(config.num_initial_steps, config.num_steps_prior, config.num_extra_rl_steps_posterior) + length - 1
    capacity = replay_capacity(config, setting.buffer_size)
    if capacity < largest:
        raise ValueError(
            f"--buffer_size={setting.buffer_size} gives {capacity} transitions per task (at most "
            f"{MAX_REPLAY_TRANSITIONS:,} over the {config.num_train_tasks} training tasks), below one "
            f"collection's {largest}"
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
        # the authors' vel configs as shipped: n_train/n_eval inside env_params, so the launcher's
        # defaults 2 / 2 ran (PEARL/configs/default.py, launch_experiment.py); 5 draws with
        # replacement from 2 tasks, per-task buffers of 1,000,000 (replay_capacity)
        "authors_task_counts": {"num_train_tasks": 2, "num_test_tasks": 2},
        "oracle": {"context": "oracle"},
    },
    run_defaults={
        "env": "halfcheetah_vel",
        "backend": "auto",  # MuJoCo's C engine on a CPU, MJX on an accelerator
        "total_steps": 400,
        "eval_every": 10,
        "eval_episodes": 1,
        "checkpoint_every": 10,
    },
    step_name="iterations",
    first_call_steps=1,
    tasks_per_seed=lambda config: config.meta_batch,
    env_presets={preset: ENV_PRESETS for preset in ("paper", "authors_task_counts", "oracle")},
)
