"""The paper's training protocol with environments stepped on the host (native MuJoCo).

Same protocol, same ``trainer.Trainer`` interface and same checkpointable pytree discipline as
``loop.py``, but the physics runs in MuJoCo's C engine through Gymnasium (``envs/native.py``):
per env step the host steps one env per seed with the pending actions, then makes **one jitted
call**, ``learn_and_act``, that stores the transitions, runs the update once the buffer is ready
and picks the next actions (all seeds vmapped, the state donated so the replay buffer is
updated in place). The order matches ``loop.py``: the action at step t comes from the agent
after update t-1.

The simulators' state is host-side and not checkpointed: after a resume every env starts a
fresh episode (seeded from the run's key), which the learner does not notice beyond one cut
episode.
"""

import warnings
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from hyperjax import types
from hyperjax.envs import native
from hyperjax.train import contract, loop, replay, trainer


@flax.struct.dataclass
class HostTrainState:
    """The checkpointed part of a host-loop run (leading axis ``[S]`` over several seeds)."""

    agent: Any
    replay: replay.Replay
    key: jax.Array  # raw uint32 key data
    eval_key: jax.Array  # fixed per seed; evaluation at step t seeds its envs from fold_in(eval_key, t or 0)


def _host_seeds(key_data: jax.Array, salt: int, per_seed: tuple[int, ...] = ()) -> np.ndarray:
    """Ints for Gymnasium's ``reset(seed=...)``, ``[S, *per_seed]``, from ``[S]`` raw keys and a salt."""
    keys = jax.vmap(lambda k: jax.random.fold_in(jax.random.wrap_key_data(k), salt))(key_data)
    return np.asarray(jax.vmap(lambda k: jax.random.randint(k, per_seed, 0, 2**31 - 1))(keys))


def make_trainer(
    agent: contract.Agent, train_env: native.VecEnv, eval_env: native.VecEnv, config: loop.LoopConfig
) -> trainer.Trainer:
    """Builds ``Trainer`` over host envs.

    ``programs``: ``init``, ``act`` (the first actions of a process), ``learn_and_act`` (the
    per-step program) and ``finite`` (the NaN guard), in the layout of ``config.num_seeds``.

    Args:
      train_env: one env per seed (``num_envs == S``).
      eval_env: ``S * config.eval_episodes`` envs, seed-major.
    """
    obs_size, action_size = train_env.observation_size, train_env.action_size
    layout = trainer.SeedLayout(config.num_seeds)
    seeds, episodes = config.num_seeds, config.eval_episodes

    def init_one(key: jax.Array) -> HostTrainState:
        agent_key, loop_key, eval_key = jax.random.split(key, 3)
        example = types.Transition(
            obs=jnp.zeros((obs_size,)),
            action=jnp.zeros((action_size,)),
            reward=jnp.zeros(()),
            discount=jnp.zeros(()),
            next_obs=jnp.zeros((obs_size,)),
        )
        return HostTrainState(
            agent=agent.init(agent_key),
            replay=replay.init(config.buffer_size, example),
            key=jax.random.key_data(loop_key),
            eval_key=jax.random.key_data(eval_key),
        )

    example_state = jax.eval_shape(init_one, jax.random.key(0))
    metric_shapes = loop.update_metric_shapes(agent, config, example_state.agent, example_state.replay)

    def act_one(state: HostTrainState, obs: jax.Array, step: jax.Array) -> tuple[HostTrainState, jax.Array]:
        key, act_key, random_key = jax.random.split(jax.random.wrap_key_data(state.key), 3)
        action = loop.behaviour_action(agent, config, state.agent, obs, act_key, random_key, step)
        return state.replace(key=jax.random.key_data(key)), action

    def learn_and_act_one(state: HostTrainState, transition: types.Transition, obs: jax.Array, step: jax.Array):
        """Stores the transition of env step ``step``, updates, and acts on ``obs`` (step + 1)."""
        key, sample_key, update_key = jax.random.split(jax.random.wrap_key_data(state.key), 3)
        buffer = replay.add(state.replay, transition)
        agent_state, metrics = loop.update_when_ready(
            agent, config, metric_shapes, state.agent, buffer, sample_key, update_key, step
        )
        state = HostTrainState(agent=agent_state, replay=buffer, key=jax.random.key_data(key), eval_key=state.eval_key)
        state, action = act_one(state, obs, step + 1)
        return state, action, metrics

    init, init_program = layout.init(init_one)
    act = layout.program(act_one, (0, 0, None), donate=True)
    learn_and_act = layout.program(learn_and_act_one, (0, 0, 0, None), donate=True)
    finite = layout.program(lambda state: trainer.all_finite(state.agent), 0)
    policies = {"return": agent.act, **{f"return_{k}": p for k, p in agent.eval_policies.items()}}
    act_eval = {name: layout.program(jax.vmap(p, in_axes=(None, 0)), 0) for name, p in policies.items()}
    to_host = lambda x: np.asarray(layout.to_seeds(x))  # noqa: E731 - this layout -> host [S, ...]
    pending = {"action": None}  # host: the actions [S, act] for train_env.obs, computed by the last call

    def run_chunk(state: HostTrainState, start_step: int, num_steps: int) -> tuple[HostTrainState, dict]:
        if pending["action"] is None:  # first chunk of this process (a new run or a resume)
            train_env.reset(_host_seeds(np.asarray(layout.to_seeds(state.key)), start_step))
            state, action = act(state, layout.from_seeds(train_env.obs), start_step)
            pending["action"] = to_host(action)
        metrics = []
        for step in range(start_step, start_step + num_steps):
            obs, action = train_env.obs, pending["action"]
            next_obs, reward, terminated, _ = train_env.step(action)
            transition = types.Transition(
                obs=obs,
                action=action,
                reward=reward,
                discount=1.0 - terminated.astype(np.float32),  # time-outs bootstrap
                next_obs=next_obs,
            )
            state, action, step_metrics = learn_and_act(
                state, layout.from_seeds(transition), layout.from_seeds(train_env.obs), step
            )
            pending["action"] = to_host(action)
            metrics.append(step_metrics)
        metrics = jax.device_get(layout.to_seeds(metrics))
        with warnings.catch_warnings():  # chunks before the first update: all NaN, mean NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            summary = {k: np.nanmean(np.stack([m[k] for m in metrics], axis=-1), axis=-1) for k in metrics[0]}
        summary["train_return"] = train_env.last_return.copy()
        summary["finite"] = to_host(finite(state))
        return state, summary

    def evaluate_policy(state: HostTrainState, step: int, act) -> np.ndarray:
        """``[S, eval_episodes]`` returns of the deterministic policy ``act``, one episode per env."""
        salt = 0 if config.same_eval_starts else step  # the same start states at every evaluation, or new ones
        obs = eval_env.reset(_host_seeds(np.asarray(layout.to_seeds(state.eval_key)), salt, (episodes,)).reshape(-1))
        returns, alive = np.zeros(seeds * episodes), np.ones(seeds * episodes, bool)
        for _ in range(config.episode_length):
            obs_by_seed = layout.from_seeds(obs.reshape(seeds, episodes, -1))
            actions = to_host(act(state.agent, obs_by_seed))
            _, reward, terminated, truncated = eval_env.step(actions.reshape(seeds * episodes, -1), alive)
            returns += np.where(alive, reward, 0.0)
            alive &= ~(terminated | truncated)
            if not alive.any():
                break
            obs = eval_env.obs
        return returns.reshape(seeds, episodes)

    def evaluate(state: HostTrainState, step: int):
        """``[S, eval_episodes]`` returns of ``act`` (or, with ``agent.eval_policies``, a dict of them:
        ``return`` and ``return_<name>``, every policy from the same start states)."""
        returns = {name: evaluate_policy(state, step, act) for name, act in act_eval.items()}
        return returns if agent.eval_policies else returns["return"]

    programs = {"init": init_program, "act": act, "learn_and_act": learn_and_act, "finite": finite}
    return trainer.Trainer(
        init=init,
        run_chunk=run_chunk,
        evaluate=evaluate,
        programs=programs,
        metric_names=(*metric_shapes, "train_return"),
        extra_returns=tuple(f"return_{name}" for name in agent.eval_policies),
    )
