"""MAML-TRPO with its meta task on MuJoCo's C engine (``--backend=native``, the default on a CPU).

The algorithm, state (``maml.MAMLState``), maths and keys are ``agents/maml.py``'s; only the rollouts
leave XLA, for ``envs/native_meta.py``'s envs stepped on the host (``train/meta_host.py``). A seed's
iteration, as programs (each jitted, vmapped over seeds by the run's ``SeedLayout``):

1. ``draw`` (the state's next key, tasks drawn from the pool, the data key), then ``start``: per task
   the pre-adaptation weights (``MetaPolicy.task_weights``), start states and action noise
   (``meta_host.plan``);
2. host: ``T`` env steps of every task's episodes, each one ``act`` call for all envs;
3. ``adapt``: ``maml.process`` (baseline, GAE), the post-adaptation weights (``maml.adapted_weights``),
   start states and noise;
4. host: the post-adaptation episodes;
5. ``learn``: ``maml.process`` of them (with the pre-adaptation baseline, or refitted), the
   adapted policies' distributions, the TRPO meta-step (``maml.make_meta_step``), the metrics.

Evaluation runs the same programs on the test tasks (``start``'s, ``act``'s and ``adapt``'s compiled
again where its task or episode count differs from training's). Measured speed, compile times and
the equality tests: docs/maml_native.md.

Its keys are split as ``maml.make_functions``'s, so from the same state an iteration starts every
episode where the MJX program does and samples the same noise (``tests/test_maml_native.py``).
"""

import time
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from hyperjax.agents import maml
from hyperjax.envs import native_meta
from hyperjax.train import meta_host
from hyperjax.train import rollout as rollout_lib
from hyperjax.train import trainer as trainer_lib


class _Abandoned(Exception):
    """An iteration given up at a heartbeat, before it consumed its state."""


class Plan(NamedTuple):
    """One phase's rollouts of ``M`` tasks x ``E`` episodes (per seed; device arrays).

    Attributes:
      tasks, contexts: ``[M, task]``. weights: the policy's per-task weights (leaves ``[M, ...]``).
      starts: ``meta_host.Starts`` ``[M, E, ...]``. post_keys: ``[M, 2]`` raw keys of the
        post-adaptation episodes (unused after them).
    """

    tasks: jax.Array
    contexts: jax.Array
    weights: object
    starts: meta_host.Starts
    post_keys: jax.Array


class Programs(NamedTuple):
    """Per-seed functions of the native path (pure; the trainer jits them).

    Attributes:
      draw: ``(train_pool, key) -> (tasks [M, task], data key)``: ``collect``'s draw.
      start: ``(params, tasks, train_pool, key, episodes) -> Plan`` (``episodes`` static).
      act: ``(weights, obs [M, E, obs], noise [M, E, T, act], t) -> actions [M, E, act]``.
      adapt: ``(params, Plan, pre Trajectory [M, E, T, ...]) -> (pre Episodes, Plan of the post phase)``.
      finish: ``(params, Plan, pre Episodes, post Trajectory) -> maml.Batch`` (what ``meta_step`` takes).
    """

    draw: Callable
    start: Callable
    act: Callable
    adapt: Callable
    finish: Callable


def make_programs(config: maml.MAMLConfig, env: native_meta.MetaVecEnv, policy: maml.MetaPolicy) -> Programs:
    """MAML's per-seed pieces around host rollouts of ``env``'s family."""
    family, length, robot = env.family, env.episode_length, env.robot
    lr = maml.inner_lr(config)

    def draw(train_pool, key):
        k_tasks, k_data = jax.random.split(key)
        return train_pool[jax.random.randint(k_tasks, (config.meta_batch,), 0, train_pool.shape[0])], k_data

    def starts(keys, episodes):
        return jax.vmap(lambda k: meta_host.plan(robot, k, episodes, length, env.action_size))(keys)

    def start(params, tasks, train_pool, key, episodes):
        contexts = family.context(tasks, train_pool)
        k_pre, k_post = jnp.moveaxis(jax.vmap(jax.random.split)(jax.random.split(key, tasks.shape[0])), 1, 0)
        weights = jax.vmap(policy.task_weights, (None, 0))(params, contexts)
        return Plan(tasks, contexts, weights, starts(k_pre, episodes), jax.random.key_data(k_post))

    def act(weights, obs, noise, t):
        def one(w, o, z):
            mean, log_std = policy.dist(w, o)
            return meta_host.sample(mean, log_std, z[:, t])

        return jax.vmap(one)(weights, obs, noise)

    def adapt(params, plan: Plan, trajectory):
        episodes = trajectory.obs.shape[1]
        pre = jax.vmap(lambda tr: maml.process(tr, config.gamma, config.gae_lambda))(trajectory)
        weights = jax.vmap(lambda c, e: maml.adapted_weights(policy, params, c, e, lr))(plan.contexts, pre)
        post_starts = starts(jax.random.wrap_key_data(plan.post_keys), episodes)
        return pre, plan._replace(weights=weights, starts=post_starts)

    def finish(params, post_plan: Plan, pre: maml.Episodes, trajectory):
        del params
        baseline = None if config.refit_baseline else pre.baseline  # the authors': fitted on pre

        def one(tr, b, w):
            post = maml.process(tr, config.gamma, config.gae_lambda, b)
            e, t = post.mask.shape
            return post, policy.dist(w, post.obs.reshape(e * t, -1))

        post, old = jax.vmap(one, (0, 0 if baseline is not None else None, 0))(trajectory, baseline, post_plan.weights)
        return maml.Batch(post_plan.tasks, post_plan.contexts, pre, post, jax.lax.stop_gradient(old))

    return Programs(draw, start, act, adapt, finish)


def _trajectory(tr: rollout_lib.Trajectory, shape: tuple[int, ...]) -> rollout_lib.Trajectory:
    """Host ``[N, T, ...]`` arrays -> ``[*shape, T, ...]``."""
    return jax.tree.map(lambda x: x.reshape(*shape, *x.shape[1:]), tr)


class NativeMAML:
    """MAML's iteration and evaluation over host-stepped envs, for all seeds of a ``SeedLayout``.

    ``timings`` (seconds, accumulated; the benchmark reads and resets it): ``env`` (host stepping),
    ``policy`` (the per-step ``act`` calls), ``start``, ``adapt`` (processing, inner step, next
    plan) and ``learn`` (post processing and the TRPO step).
    """

    def __init__(self, config: maml.MAMLConfig, spec, num_seeds: int, eval_episodes: int, threads: int | None = None):
        """``spec``: the run's ``registry.EnvSpec`` (backend native); ``threads``: host threads stepping
        the envs (default: the cores this process may use)."""
        kwargs = dict(heading_bug=config.heading_bug, threads=threads)
        self.config, self.layout = config, trainer_lib.SeedLayout(num_seeds)
        self.num_seeds, self.eval_episodes = num_seeds, eval_episodes
        self.train_env = spec.make_meta_host(num_seeds * config.meta_batch * config.fast_batch, **kwargs)
        self.eval_env = spec.make_meta_host(num_seeds * config.num_test_tasks * eval_episodes, **kwargs)
        env = self.train_env
        family = env.family
        self.policy = maml.make_policy(config, env.observation_size, env.action_size, family.task_size)
        self.fns = make_programs(config, env, self.policy)
        self.init_one = maml.make_init(config, self.policy, family)
        _, meta_step = maml.make_meta_step(config, self.policy)
        fns, layout = self.fns, self.layout

        def draw(state):
            """``(tasks, data key, the state's next key)``: ``maml.train_step``'s and ``collect``'s splits."""
            key, step_key = jax.random.split(state.rng())
            tasks, data_key = fns.draw(state.train_tasks, step_key)
            return tasks, data_key, key

        def eval_tasks(state, step):
            return state.test_tasks, jax.random.fold_in(state.eval_rng(), step)

        def start(episodes):
            return lambda params, tasks, pool, key: fns.start(params, tasks, pool, key, episodes)

        def learn(state, next_key, post_plan, pre, trajectory):
            batch = fns.finish(state.params, post_plan, pre, trajectory)
            params, info = meta_step(state.params, batch)
            state = state.replace(params=params, key=jax.random.key_data(next_key))
            return state, maml.step_metrics(batch, info)

        # one start program per episode count: evaluation reuses training's where the counts agree
        self._start = {n: layout.program(start(n), 0) for n in {config.fast_batch, eval_episodes}}
        self.programs = {
            "draw": layout.program(draw, 0),
            "eval_tasks": layout.program(eval_tasks, (0, None)),
            **{f"start_{n}": program for n, program in self._start.items()},
            "act": layout.program(fns.act, (0, 0, 0, None)),
            "adapt": layout.program(fns.adapt, (0, 0, 0)),
            "learn": layout.program(learn, (0, 0, 0, 0, 0), donate=True),
            "finite": layout.program(lambda state: trainer_lib.all_finite(state.params), 0),
        }
        self.timings = dict.fromkeys(("env", "policy", "start", "adapt", "learn"), 0.0)
        self.heartbeat = trainer_lib.Heartbeat()  # beaten at every env step of the rollouts

    def _timed(self, name: str, fn, *args):
        t0 = time.perf_counter()
        out = jax.block_until_ready(fn(*args))
        self.timings[name] += time.perf_counter() - t0
        return out

    def rollouts(self, env: native_meta.MetaVecEnv, plan: Plan, what: str, stoppable: bool = False):
        """The plan's episodes of every seed on ``env``: a ``Trajectory`` in the layout, ``[(S,) M, E, T, ...]``.

        Beats the heartbeat at every env step (``what``: the phase, for progress lines); raises
        ``_Abandoned`` when it asks to stop and the caller can (``stoppable``: training, not evaluation)."""
        layout, act = self.layout, self.programs["act"]
        length = env.episode_length
        qpos = np.asarray(layout.to_seeds(plan.starts.qpos))  # [S, M, E, nq]
        shape = qpos.shape[:3]
        tasks = np.broadcast_to(np.asarray(layout.to_seeds(plan.tasks))[:, :, None], (*shape, env.task_size))
        qvel = np.asarray(layout.to_seeds(plan.starts.qvel))

        def policy(t, obs):
            if self.heartbeat.beat(f"{what}, env step {t}/{length}") and stoppable:
                raise _Abandoned
            actions = act(plan.weights, layout.from_seeds(obs.reshape(*shape, -1)), plan.starts.noise, t)
            return np.asarray(layout.to_seeds(actions)).reshape(env.num_envs, -1)

        flat = lambda x: x.reshape(env.num_envs, *x.shape[3:])  # noqa: E731
        timings = meta_host.Timings()
        trajectory = meta_host.run(env, policy, flat(tasks), flat(qpos), flat(qvel), env.episode_length, timings)
        self.timings["env"] += timings.env_s
        self.timings["policy"] += timings.policy_s
        return layout.from_seeds(_trajectory(trajectory, shape))

    def iteration(self, state, name: str = "iteration"):
        """One meta-iteration of every seed: ``(state, metrics)`` (``maml.METRICS``, per seed).

        ``_Abandoned`` (a stop asked for at a heartbeat) comes before ``learn``, the one program that
        consumes ``state``: the state given is then intact."""
        tasks, data_key, next_key = self.programs["draw"](state)
        start = self._start[self.config.fast_batch]
        plan = self._timed("start", start, state.params, tasks, state.train_tasks, data_key)
        pre_trajectory = self.rollouts(self.train_env, plan, f"{name}: pre-adaptation episodes", True)
        pre, post_plan = self._timed("adapt", self.programs["adapt"], state.params, plan, pre_trajectory)
        post_trajectory = self.rollouts(self.train_env, post_plan, f"{name}: post-adaptation episodes", True)
        learn = self.programs["learn"]
        return self._timed("learn", learn, state, next_key, post_plan, pre, post_trajectory)

    def adaptation(self, state, step: int) -> dict:
        """``{'return': post [S, N], 'return_pre': pre [S, N]}``: the test tasks' mean returns after and
        before one inner step (``maml.Functions.adaptation`` at the evaluation key of ``step``)."""
        tasks, key = self.programs["eval_tasks"](state, step)
        plan = self._start[self.eval_episodes](state.params, tasks, state.train_tasks, key)
        pre_trajectory = self.rollouts(self.eval_env, plan, f"evaluation at step {step}: pre-adaptation episodes")
        pre, post_plan = self.programs["adapt"](state.params, plan, pre_trajectory)
        post_trajectory = self.rollouts(
            self.eval_env, post_plan, f"evaluation at step {step}: post-adaptation episodes"
        )
        post = meta_host.episode_returns(jax.tree.map(np.asarray, post_trajectory))
        pre_returns = np.asarray(self.layout.to_seeds(pre.returns)).mean(-1)
        return {"return": np.asarray(self.layout.to_seeds(post)).mean(-1), "return_pre": pre_returns}

    def close(self) -> None:
        self.train_env.close()
        self.eval_env.close()


def make_trainer(config: maml.MAMLConfig, setting: trainer_lib.Setting) -> trainer_lib.Trainer:
    """MAML's trainer over host-stepped envs; the same interface and state as ``maml.make_trainer``'s.

    Programs: ``init`` and ``NativeMAML.programs`` (``draw``, ``eval_tasks``, ``start_<episodes>``,
    ``act``, ``adapt``, ``learn``, ``finite``)."""
    native = NativeMAML(config, setting.env, setting.num_seeds, setting.eval_episodes)
    init, init_program = native.layout.init(native.init_one)

    def summary(state, sums, n):
        means = {k: v / n for k, v in sums.items()}
        return {**means, "finite": np.asarray(native.layout.to_seeds(native.programs["finite"](state)))}

    def run_chunk(state, start_step, num_steps):
        sums = None
        for i in range(num_steps):
            try:
                state, metrics = native.iteration(state, f"iteration {start_step + i + 1}")
            except _Abandoned:  # a stop at a heartbeat: the state after i whole iterations
                raise trainer_lib.CallStopped(state, i, summary(state, sums, i) if i else None) from None
            metrics = jax.device_get(native.layout.to_seeds(metrics))
            sums = metrics if sums is None else jax.tree.map(np.add, sums, metrics)
        return state, summary(state, sums, num_steps)

    return trainer_lib.Trainer(
        init=init,
        run_chunk=run_chunk,
        evaluate=native.adaptation,
        programs={"init": init_program, **native.programs},
        metric_names=maml.METRICS,
        extra_returns=("return_pre",),
        heartbeat=native.heartbeat,
    )
