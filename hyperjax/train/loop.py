"""The off-policy protocol (SAC, TD3) compiled into a few XLA programs.

The paper's protocol: one environment per seed, one gradient step per environment step,
uniformly random actions for the first ``start_steps``, updates once the buffer holds
``update_after`` transitions. The throughput mode widens it: ``num_envs`` environments per seed
step together (one iteration = ``num_envs`` env steps, all stored), and each iteration makes
``updates_per_step`` gradient steps, on one buffer sample split into minibatches and scanned
(as Brax's SAC does). ``num_envs = updates_per_step = 1`` is the paper's protocol, program for
program (no env axis, one sample per update).
``run_chunk`` is one loop (``lax.fori_loop``) over any number of env steps + updates, the count
an argument of the compiled program, so the runner can size each call from the measured speed
(short calls: progress and interrupts every few seconds) without recompiling; ``evaluate`` runs
``eval_episodes`` deterministic episodes in parallel (``rollout.rollout``), with ``act`` and with each
of the agent's ``eval_policies`` from the same start states. Both are vmapped over
seeds: the global step is passed *unbatched*, so the update/no-update branch stays a real
``lax.cond`` for all seeds together instead of turning into a select that would run the update
every step. The seed layout (``trainer.SeedLayout``) is fixed by ``num_seeds``.
The loop knows agents only through ``contract.Agent``: no algorithm, critic or metric names.
"""

import dataclasses
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
from brax.envs import base as brax_base

from hyperjax import types
from hyperjax.train import contract, replay, rollout, trainer


@dataclasses.dataclass
class LoopConfig:
    """The protocol around the agent (docs/authors_code.md, SAC and TD3)."""

    batch_size: int
    start_steps: int  # random actions while step < start_steps
    update_after: int  # first update once the buffer holds this many transitions
    buffer_size: int
    eval_episodes: int
    episode_length: int
    num_seeds: int = 1
    num_envs: int = 1  # environments per seed, stepped together; steps come in multiples of it
    updates_per_step: int = 1  # gradient steps per iteration (one step of all num_envs envs)
    sample_with_replacement: bool = True  # False: each batch holds distinct transitions
    same_eval_starts: bool = False  # True: every evaluation starts its episodes from the same states


@flax.struct.dataclass
class TrainState:
    """Everything a run needs to continue; arrays only (keys as raw ``uint32`` key data)."""

    agent: Any
    replay: replay.Replay
    env_state: brax_base.State
    key: jax.Array
    eval_key: jax.Array  # fixed per seed; evaluation at step t: fold_in(eval_key, t), or eval_key (same_eval_starts)
    episode_return: jax.Array  # return of the running episode
    last_return: jax.Array  # return of the last finished episode (NaN before the first)


def behaviour_action(
    agent: contract.Agent, config: LoopConfig, agent_state, obs, act_key, random_key, step
) -> jax.Array:
    """The action taken at env step ``step``: uniform in [-1, 1] before ``start_steps``, else ``explore``.

    ``obs`` is ``[obs]``, or ``[num_envs, obs]`` when ``config.num_envs > 1`` (actions likewise).
    """
    if config.num_envs == 1:
        explore = agent.explore(agent_state, obs, act_key)
    else:
        explore = jax.vmap(agent.explore, (None, 0, 0))(agent_state, obs, jax.random.split(act_key, config.num_envs))
    random_action = jax.random.uniform(random_key, explore.shape, minval=-1.0, maxval=1.0)
    return jnp.where(step < config.start_steps, random_action, explore)


def update_metric_shapes(agent: contract.Agent, config: LoopConfig, agent_state, buffer: replay.Replay) -> dict:
    """Shapes of ``agent.update``'s metrics (for the no-update branch); arguments may be abstract."""
    batch = jax.tree.map(lambda x: jax.ShapeDtypeStruct((config.batch_size, *x.shape[1:]), x.dtype), buffer.data)
    step = jax.ShapeDtypeStruct((), jnp.int32)
    return jax.eval_shape(agent.update, agent_state, batch, jax.random.key(0), step)[1]


def update_when_ready(
    agent: contract.Agent, config: LoopConfig, metric_shapes, agent_state, buffer, sample_key, update_key, step
):
    """``updates_per_step`` updates once the iteration at env step ``step`` has filled ``update_after`` slots.

    A real ``lax.cond`` (``step`` is unbatched); metrics are NaN where no update ran. Several
    updates share one sample of ``updates_per_step * batch_size`` transitions, split into
    minibatches and scanned (metrics: their mean; without replacement, each minibatch is drawn on
    its own, distinct within itself); the agent is given the count of gradient steps before each
    (0 at the first update, which is at iteration ``first_update_iteration``).
    """
    num_updates = config.updates_per_step
    replace = config.sample_with_replacement

    def do_update(agent_state):
        before = (step // config.num_envs - first_update_iteration(config)) * num_updates  # gradient steps so far
        if num_updates == 1:
            batch = replay.sample(buffer, sample_key, config.batch_size, replace)
            return agent.update(agent_state, batch, update_key, before)
        if replace:
            batches = replay.sample(buffer, sample_key, num_updates * config.batch_size)
            batches = jax.tree.map(lambda x: x.reshape(num_updates, config.batch_size, *x.shape[1:]), batches)
        else:
            sample = lambda key: replay.sample(buffer, key, config.batch_size, replace=False)  # noqa: E731
            batches = jax.vmap(sample)(jax.random.split(sample_key, num_updates))
        first = before

        def one(agent_state, inputs):
            batch, key, j = inputs
            return agent.update(agent_state, batch, key, first + j)

        keys = jax.random.split(update_key, num_updates)
        agent_state, metrics = jax.lax.scan(one, agent_state, (batches, keys, jnp.arange(num_updates)))
        return agent_state, jax.tree.map(lambda m: jnp.nanmean(m, axis=0), metrics)

    def skip(agent_state):
        return agent_state, jax.tree.map(lambda s: jnp.full(s.shape, jnp.nan, s.dtype), metric_shapes)

    return jax.lax.cond(step + config.num_envs >= config.update_after, do_update, skip, agent_state)


def first_update_iteration(config: LoopConfig) -> int:
    """The iteration (env step // ``num_envs``) of the first update: the first whose envs fill
    ``update_after`` slots."""
    return max(0, -(-config.update_after // config.num_envs) - 1)


def make_trainer(agent: contract.Agent, env: brax_base.Env, config: LoopConfig) -> trainer.Trainer:
    """Builds the jitted init / chunk / evaluate programs (config read here, outside jit).

    ``programs``: ``init``, ``chunk`` (``(state, start_step, num_steps) -> (state, metrics)``,
    the state donated; both step counts multiples of ``num_envs``) and ``evaluate``
    (``(state, step) -> returns [E]``, or with ``agent.eval_policies`` a dict: ``return`` and
    ``return_<name>``), in the layout of ``config.num_seeds``.
    """
    action_size, num_envs = env.action_size, config.num_envs
    layout = trainer.SeedLayout(config.num_seeds)
    per_env = () if num_envs == 1 else (num_envs,)  # the env axis of env states, returns, actions

    def reset(key: jax.Array) -> brax_base.State:
        return env.reset(key) if num_envs == 1 else jax.vmap(env.reset)(jax.random.split(key, num_envs))

    def step_envs(env_state: brax_base.State, action: jax.Array) -> brax_base.State:
        return env.step(env_state, action) if num_envs == 1 else jax.vmap(env.step)(env_state, action)

    def store(buffer: replay.Replay, transition: types.Transition) -> replay.Replay:
        return replay.add(buffer, transition) if num_envs == 1 else replay.add_batch(buffer, transition)

    def where_done(done: jax.Array, fresh: jax.Array, current: jax.Array) -> jax.Array:
        return jnp.where(done.reshape(done.shape + (1,) * (current.ndim - done.ndim)), fresh, current)

    def init_one(key: jax.Array) -> TrainState:
        agent_key, env_key, loop_key, eval_key = jax.random.split(key, 4)
        env_state = reset(env_key)
        obs = env_state.obs if num_envs == 1 else env_state.obs[0]
        example = types.Transition(
            obs=obs,
            action=jnp.zeros((action_size,)),
            reward=jnp.zeros(()),
            discount=jnp.zeros(()),
            next_obs=obs,
        )
        return TrainState(
            agent=agent.init(agent_key),
            replay=replay.init(config.buffer_size, example),
            env_state=env_state,
            key=jax.random.key_data(loop_key),
            eval_key=jax.random.key_data(eval_key),
            episode_return=jnp.zeros(per_env),
            last_return=jnp.full(per_env, jnp.nan, jnp.float32),
        )

    def env_step(state: TrainState, step: jax.Array) -> tuple[TrainState, dict]:
        """One iteration: env steps ``step .. step + num_envs - 1`` of every env, stored, then the updates."""
        key, act_key, random_key, reset_key, sample_key, update_key = jax.random.split(
            jax.random.wrap_key_data(state.key), 6
        )
        obs = state.env_state.obs
        action = behaviour_action(agent, config, state.agent, obs, act_key, random_key, step)
        next_env = step_envs(state.env_state, action)
        done, truncation = next_env.done, next_env.info["truncation"]
        transition = types.Transition(
            obs=obs,
            action=action,
            reward=next_env.reward,
            discount=1.0 - done * (1.0 - truncation),  # time-outs bootstrap
            next_obs=next_env.obs,
        )
        buffer = store(state.replay, transition)
        episode_return = state.episode_return + next_env.reward
        fresh = reset(reset_key)
        next_env = jax.tree.map(lambda r, n: where_done(done, r, n), fresh, next_env)

        agent_state, metrics = update_when_ready(
            agent, config, metric_shapes, state.agent, buffer, sample_key, update_key, step
        )
        new_state = TrainState(
            agent=agent_state,
            replay=buffer,
            env_state=next_env,
            key=jax.random.key_data(key),
            eval_key=state.eval_key,
            episode_return=jnp.where(done, 0.0, episode_return),
            last_return=jnp.where(done, episode_return, state.last_return),
        )
        return new_state, metrics

    def chunk_one(state: TrainState, start_step: jax.Array, num_steps: jax.Array) -> tuple[TrainState, dict]:
        def body(i, carry):
            state, sums, counts = carry
            state, metrics = env_step(state, start_step + i * num_envs)
            measured = jax.tree.map(lambda v: ~jnp.isnan(v), metrics)  # NaN: nothing measured (no update)
            sums = jax.tree.map(lambda t, v, m: t + jnp.where(m, v, 0.0), sums, metrics, measured)
            counts = jax.tree.map(lambda c, m: c + m, counts, measured)
            return state, sums, counts

        zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), metric_shapes)
        counts = jax.tree.map(lambda s: jnp.zeros(s.shape, jnp.int32), metric_shapes)
        state, sums, counts = jax.lax.fori_loop(0, num_steps // num_envs, body, (state, zeros, counts))
        summary = jax.tree.map(lambda t, c: jnp.where(c > 0, t / jnp.maximum(c, 1), jnp.nan), sums, counts)
        summary["train_return"] = state.last_return if num_envs == 1 else jnp.nanmean(state.last_return)
        # a NaN/inf loss makes its gradients, hence the parameters it updates, non-finite in the same
        # update, and Adam keeps them so: checking the agent's state needs no loss names
        summary["finite"] = trainer.all_finite(state.agent)
        return state, summary

    def evaluate_one(state: TrainState, step: jax.Array):
        key = jax.random.wrap_key_data(state.eval_key)
        if not config.same_eval_starts:  # else the same start states at every evaluation
            key = jax.random.fold_in(key, step)
        episode_keys = jax.random.split(key, config.eval_episodes)  # the start states: one key per episode

        def returns(act):
            def episode(episode_key):
                policy = lambda agent_state, obs, _: act(agent_state, obs)  # noqa: E731
                trajectory = rollout.rollout(env, policy, state.agent, episode_key, config.episode_length)
                return rollout.episode_return(trajectory)

            return jax.vmap(episode)(episode_keys)

        if not agent.eval_policies:
            return returns(agent.act)
        return {"return": returns(agent.act), **{f"return_{k}": returns(p) for k, p in agent.eval_policies.items()}}

    example_state = jax.eval_shape(init_one, jax.random.key(0))
    metric_shapes = update_metric_shapes(agent, config, example_state.agent, example_state.replay)
    init, init_program = layout.init(init_one)
    chunk = layout.program(chunk_one, (0, None, None), donate=True)
    evaluate_program = layout.program(evaluate_one, (0, None))

    def run_chunk(state: TrainState, start_step, num_steps) -> tuple[TrainState, dict]:
        state, metrics = chunk(state, jnp.int32(start_step), jnp.int32(num_steps))
        return state, layout.to_seeds(metrics)

    return trainer.Trainer(
        init=init,
        run_chunk=run_chunk,
        evaluate=lambda state, step: layout.to_seeds(evaluate_program(state, step)),
        programs={"init": init_program, "chunk": chunk, "evaluate": evaluate_program},
        metric_names=(*metric_shapes, "train_return"),
        extra_returns=tuple(f"return_{name}" for name in agent.eval_policies),
        snapshot=(lambda state: layout.to_seeds(agent.snapshot(state.agent))) if agent.snapshot else None,
        step_multiple=num_envs,
    )
