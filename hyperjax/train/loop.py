"""The paper's training protocol compiled into a few XLA programs.

One environment per seed, one gradient step per environment step, uniformly random actions
for the first ``start_steps``, updates once the buffer holds ``update_after`` transitions.
``run_chunk`` is a ``lax.scan`` over ``chunk_steps`` env steps + updates; ``evaluate`` runs
``eval_episodes`` deterministic episodes in parallel. Both are vmapped over seeds: the global
step is passed *unbatched*, so the update/no-update branch stays a real ``lax.cond`` for all
seeds together instead of turning into a select that would run the update every step.
A one-seed run uses the same programs unvmapped on an unbatched state (``single_seed``).
"""

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
from brax.envs import base as brax_base

from hyperjax import types
from hyperjax.agents import base
from hyperjax.train import replay


@dataclasses.dataclass
class LoopConfig:
    """The protocol around the agent (PAPER_FACTS 3.1/3.2)."""

    batch_size: int
    start_steps: int  # random actions while step < start_steps
    update_after: int  # first update once the buffer holds this many transitions
    buffer_size: int
    chunk_steps: int  # env steps per compiled chunk (progress, eval and checkpoints fall between chunks)
    eval_episodes: int
    episode_length: int


@flax.struct.dataclass
class TrainState:
    """Everything a run needs to continue; arrays only (keys as raw ``uint32`` key data)."""

    agent: Any
    replay: replay.Replay
    env_state: brax_base.State
    key: jax.Array
    eval_key: jax.Array  # fixed per seed; evaluation at step t uses fold_in(eval_key, t)
    episode_return: jax.Array  # return of the running episode
    last_return: jax.Array  # return of the last finished episode (NaN before the first)


class Trainer(NamedTuple):
    """Jitted programs over the training state: every leaf has a leading seed axis ``[S]``, except
    in a one-seed run, whose state is unbatched (``single_seed``); outputs are always ``[S, ...]``.

    Attributes:
      init: ``keys [S] -> TrainState``.
      run_chunk: ``(state, start_step) -> (state, metrics)``; metrics are per-seed chunk means
        plus ``finite`` (no NaN/inf loss or parameter in the chunk). Donates ``state``.
      evaluate: ``(state, step) -> returns [S, eval_episodes]``.
    """

    init: Callable[[jax.Array], TrainState]
    run_chunk: Callable[[TrainState, int], tuple[TrainState, dict]]
    evaluate: Callable[[TrainState, int], jax.Array]


# XLA:CPU's precise (region-based) copy insertion: with the training state donated, the default
# analysis copies the whole critic (72 MB for SA-Hyper) every update before Adam overwrites it
# in place. Measured on the 2-core CPU: SA-Hyper SAC update 149 -> 140 ms, MLP 2.5 -> 2.2 ms;
# results are bitwise identical (tests/test_agents.py). benchmarks/NOTES.md has the profile.
CPU_COMPILER_OPTIONS = {"xla_cpu_copy_insertion_use_region_analysis": True}


def jit_program(fn: Callable, **kwargs) -> Callable:
    """``jax.jit`` with this library's compiler options for the current backend."""
    options = CPU_COMPILER_OPTIONS if jax.default_backend() == "cpu" else None
    return jax.jit(fn, compiler_options=options, **kwargs)


def behaviour_action(agent: base.Agent, config: LoopConfig, agent_state, obs, act_key, random_key, step) -> jax.Array:
    """The action taken at env step ``step``: uniform in [-1, 1] before ``start_steps``, else ``explore``."""
    explore = agent.explore(agent_state, obs, act_key)
    random_action = jax.random.uniform(random_key, explore.shape, minval=-1.0, maxval=1.0)
    return jnp.where(step < config.start_steps, random_action, explore)


def update_metric_shapes(agent: base.Agent, config: LoopConfig, agent_state, buffer: replay.Replay) -> dict:
    """Shapes of ``agent.update``'s metrics (for the no-update branch); arguments may be abstract."""
    batch = jax.tree.map(lambda x: jax.ShapeDtypeStruct((config.batch_size, *x.shape[1:]), x.dtype), buffer.data)
    step = jax.ShapeDtypeStruct((), jnp.int32)
    return jax.eval_shape(agent.update, agent_state, batch, jax.random.key(0), step)[1]


def update_when_ready(
    agent: base.Agent, config: LoopConfig, metric_shapes, agent_state, buffer, sample_key, update_key, step
):
    """One update on a sampled batch once env step ``step`` has filled ``update_after`` slots.

    A real ``lax.cond`` (``step`` is unbatched); metrics are NaN where no update ran.
    """

    def do_update(agent_state):
        batch = replay.sample(buffer, sample_key, config.batch_size)
        return agent.update(agent_state, batch, update_key, step)

    def skip(agent_state):
        return agent_state, jax.tree.map(lambda s: jnp.full(s.shape, jnp.nan, s.dtype), metric_shapes)

    return jax.lax.cond(step + 1 >= config.update_after, do_update, skip, agent_state)


def all_finite(tree) -> jax.Array:
    """True when no leaf holds a NaN or inf."""
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


def single_seed(state) -> bool:
    """Whether a training state is a one-seed state, which has no seed axis.

    XLA:CPU compiles a size-1 ``vmap`` of the SA-Hyper update ~1.5x slower than the unbatched
    update (its weight-gradient GEMMs come out transposed and Adam transposes them back; measured
    213 vs 143 ms, benchmarks/NOTES.md), so a one-seed run keeps its state unbatched and runs the
    unbatched programs; several seeds are a leading ``[S]`` axis and run the vmapped ones.
    """
    return state.key.ndim == 1  # raw key data: [2] for one seed, [S, 2] for several


def expand_seeds(tree):
    """``[...]`` leaves -> ``[1, ...]``: a one-seed output in the seed-batched shape."""
    return jax.tree.map(lambda x: x[None], tree)


def per_seed(one: Callable, in_axes, donate: bool = False, jit: Callable = jit_program) -> dict[bool, Callable]:
    """``{single_seed: program}``: ``one`` jitted as is (a one-seed, unbatched state: ``True``) and
    vmapped over seeds with ``in_axes`` (``False``); the state (argument 0) donated if ``donate``."""
    donate_argnums = 0 if donate else ()
    return {
        True: jit(one, donate_argnums=donate_argnums),
        False: jit(jax.vmap(one, in_axes), donate_argnums=donate_argnums),
    }


def init_over_seeds(init_one: Callable) -> Callable:
    """``keys [S] -> state``: unbatched for one seed (``single_seed``), seed-batched otherwise.

    Plain ``jax.jit``: init runs once, and ``jax.eval_shape`` traces it (resume), where compiler
    options are refused.
    """
    programs = per_seed(init_one, 0, jit=jax.jit)
    return lambda keys: programs[True](keys[0]) if keys.shape[0] == 1 else programs[False](keys)


def make_trainer(agent: base.Agent, env: brax_base.Env, config: LoopConfig) -> Trainer:
    """Builds the jitted init / chunk / evaluate programs (config read here, outside jit)."""
    action_size = env.action_size

    def init_one(key: jax.Array) -> TrainState:
        agent_key, env_key, loop_key, eval_key = jax.random.split(key, 4)
        env_state = env.reset(env_key)
        example = types.Transition(
            obs=env_state.obs,
            action=jnp.zeros((action_size,)),
            reward=jnp.zeros(()),
            discount=jnp.zeros(()),
            next_obs=env_state.obs,
        )
        return TrainState(
            agent=agent.init(agent_key),
            replay=replay.init(config.buffer_size, example),
            env_state=env_state,
            key=jax.random.key_data(loop_key),
            eval_key=jax.random.key_data(eval_key),
            episode_return=jnp.zeros(()),
            last_return=jnp.full((), jnp.nan, jnp.float32),
        )

    def env_step(state: TrainState, step: jax.Array) -> tuple[TrainState, dict]:
        key, act_key, random_key, reset_key, sample_key, update_key = jax.random.split(
            jax.random.wrap_key_data(state.key), 6
        )
        obs = state.env_state.obs
        action = behaviour_action(agent, config, state.agent, obs, act_key, random_key, step)
        next_env = env.step(state.env_state, action)
        done, truncation = next_env.done, next_env.info["truncation"]
        transition = types.Transition(
            obs=obs,
            action=action,
            reward=next_env.reward,
            discount=1.0 - done * (1.0 - truncation),  # time-outs bootstrap
            next_obs=next_env.obs,
        )
        buffer = replay.add(state.replay, transition)
        episode_return = state.episode_return + next_env.reward
        fresh = env.reset(reset_key)
        next_env = jax.tree.map(lambda r, n: jnp.where(done, r, n), fresh, next_env)

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

    def chunk_one(state: TrainState, start_step: jax.Array) -> tuple[TrainState, dict]:
        steps = start_step + jnp.arange(config.chunk_steps)
        state, metrics = jax.lax.scan(env_step, state, steps)
        updated = steps + 1 >= config.update_after
        finite = jnp.all(jnp.where(updated, jnp.isfinite(metrics["critic_loss"]), True))
        summary = {k: jnp.nanmean(v) for k, v in metrics.items()}
        summary["finite"] = finite & all_finite(state.agent)
        summary["train_return"] = state.last_return
        return state, summary

    def evaluate_one(state: TrainState, key: jax.Array) -> jax.Array:
        def episode(episode_key):
            def body(carry, _):
                env_state, ret, alive = carry
                env_state = env.step(env_state, agent.act(state.agent, env_state.obs))
                return (env_state, ret + alive * env_state.reward, alive * (1.0 - env_state.done)), None

            init = (env.reset(episode_key), jnp.zeros(()), jnp.ones(()))
            return jax.lax.scan(body, init, None, length=config.episode_length)[0][1]

        return jax.vmap(episode)(jax.random.split(key, config.eval_episodes))

    example_state = jax.eval_shape(init_one, jax.random.key(0))
    metric_shapes = update_metric_shapes(agent, config, example_state.agent, example_state.replay)

    def evaluate_seed(state: TrainState, step) -> jax.Array:
        return evaluate_one(state, jax.random.fold_in(jax.random.wrap_key_data(state.eval_key), step))

    chunk = per_seed(chunk_one, (0, None), donate=True)
    evaluate_programs = per_seed(evaluate_seed, (0, None))

    def run_chunk(state: TrainState, start_step) -> tuple[TrainState, dict]:
        single = single_seed(state)
        state, metrics = chunk[single](state, start_step)
        return state, expand_seeds(metrics) if single else metrics

    def evaluate(state: TrainState, step) -> jax.Array:
        single = single_seed(state)
        returns = evaluate_programs[single](state, step)
        return returns[None] if single else returns

    run_chunk.programs = chunk  # e.g. for ahead-of-time compilation
    return Trainer(init=init_over_seeds(init_one), run_chunk=run_chunk, evaluate=evaluate)
