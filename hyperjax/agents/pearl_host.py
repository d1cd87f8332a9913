"""PEARL with its meta task on MuJoCo's C engine (``--backend=native``, the default on a CPU).

The algorithm, state (``pearl.PEARLState``), maths and keys are ``agents/pearl.py``'s; only the
rollouts leave XLA, for ``envs/native_meta.py``'s envs stepped on the host (``train/meta_host.py``),
the policy (with each trajectory's ``z``) one jitted call for all envs per env step. A phase of
``collect_trajectories`` becomes, per seed (each program vmapped over seeds by the run's ``SeedLayout``):

1. ``launch``: per task the first ``K = ceil(budget / T)`` trajectories' ``z`` (prior or
   posterior), the policy's per-trajectory input, start states and action noise, from the keys
   ``collect_trajectories`` splits;
2. host: ``T`` env steps of all ``M x K`` trajectories (of every seed), one ``act`` call per step;
3. ``start``: ``Parts.phase_start`` (the trajectories that started before the budget was met);
4. while a task is short of its budget (an Ant fell): ``more`` (one trajectory per task), host
   rollouts, ``add`` (``Parts.phase_add``); then ``end`` (``Parts.phase_end``).

An iteration is ``begin`` (the keys of ``pearl.iteration``, ``Parts.draw``), the prior phase, the
posterior phase, ``store`` (``Parts.store``; the state's key advances and the ``num_train_steps``
gradient steps become pending: ``Functions.pend_training``), then the gradient steps in calls of
``train_steps`` (``Functions.train_steps``: one program, a ``fori_loop`` of run-time length, step
``i`` on key ``i`` of ``Functions.train``'s split, bitwise the MJX path's scan), each call sized
to about ``NativePEARL.CALL_SECONDS`` from the measured time per step (a 1-step probe first), the
heartbeat beaten between calls ("iteration 3: gradient steps 120/2000"). A stop at a heartbeat
keeps everything: in a collection it comes before ``store`` consumes the state (the state given
stands); in the gradient steps the state holds the iteration's data, the steps done and the rest
pending (``PEARLState.pending``, ``train_key``, ``iteration_sums``), ``CallStopped`` carries it,
and the next call from it runs the rest first (completing the iteration, its first step) with
the keys and metric sums they would have had. The evaluation is ``Functions.evaluate``'s loop
with the trajectories on the host (``eval_choose``, host rollouts, ``eval_record``, a task's loop
state kept once it has its budget, as the vmapped ``while_loop`` keeps it). From the same state the
episodes start where the MJX path's start and sample the same noise; only the engine differs
(``tests/test_pearl_native.py``).
"""

import functools
import threading
import time
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from hyperjax.agents import pearl
from hyperjax.envs import native_meta
from hyperjax.nn import policies
from hyperjax.train import meta_host
from hyperjax.train import rollout as rollout_lib
from hyperjax.train import trainer as trainer_lib


class _Abandoned(Exception):
    """A stop at a heartbeat: ``state`` the state to keep, or None in a collection (given up before
    it consumed its state: the state it was given stands)."""

    def __init__(self, state: pearl.PEARLState | None = None):
        super().__init__("stopped at a heartbeat")
        self.state = state


class Launch(NamedTuple):
    """``E`` trajectories to run on the host (per seed): ``tasks [E, task]``, ``weights`` (the policy's
    per-trajectory input: ``z [E, z]`` for the MLP, the generated weights for the hyper policy) and
    ``starts`` (``meta_host.Starts`` ``[E, ...]``)."""

    tasks: jax.Array
    weights: object
    starts: meta_host.Starts


def policy_fns(model: str, nets) -> tuple[Callable, Callable]:
    """``(weights(params, z), dist(params, weights, obs [B, obs]) -> (mean, log_std))``. The MLP's
    weights are its parameters and ``z``: only ``z`` is carried (not a copy of the parameters per
    env); the hyper policy's are generated once per trajectory, as on the MJX path."""
    if model == "mlp":
        return (lambda params, z: z), (lambda params, z, obs: nets.policy(params, obs, z))
    return (lambda params, z: nets.policy_weights(params, z)), (lambda params, w, obs: nets.policy_dist(w, obs))


class Programs(NamedTuple):
    """The per-seed programs of the native path (pure; ``NativePEARL`` jits them)."""

    launch: Callable
    more: Callable
    start: Callable
    add: Callable
    end: Callable
    act: Callable


def make_programs(config: pearl.PEARLConfig, fns: pearl.Functions, robot: str, length: int, action_size: int):
    """``Programs`` of one phase kind: ``launch(params, tasks [M], rows, key, budget, choose) ->
    (Launch [M * K], key)``, ``more(params, tasks, rows, index, key, choose) -> (Launch [M], key)``,
    ``start(runs [M * K, T], budget) -> (Kept, Tally)``, ``add(tally, start, runs [M, T], budget)``,
    ``end(kept, tally) -> Phase``, ``act(params, weights, obs [E, obs], noise [E, T, act], t,
    deterministic) -> actions [E, act]``."""
    parts = fns.parts
    weights_of, dist = policy_fns(config.model, parts.nets)

    def starts(key):  # rollout.rollout's keys: a reset key, then one policy key per step
        reset_key, policy_key = jax.random.split(key)
        qpos, qvel = native_meta.reset_state(robot, reset_key)
        noise = jax.vmap(lambda s: jax.random.normal(s, (1, action_size))[0])(jax.random.split(policy_key, length))
        return meta_host.Starts(qpos, qvel, noise)

    def start_one(params, choose, row, task, index, k):
        k_z, k_run = jax.random.split(k)
        return Launch(task, weights_of(params, choose(row, index, k_z)), starts(k_run))

    def flat(tree):
        return jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), tree)

    def launch(params, tasks, rows, key, budget, choose):
        first = pearl.nominal_trajectories(budget, length)
        k_first, k_more = jax.random.split(key)
        keys = jax.random.split(k_first, (tasks.shape[0], first))
        one = functools.partial(start_one, params, choose)
        out = jax.vmap(jax.vmap(one, (None, None, 0, 0)), (0, 0, None, 0))(rows, tasks, jnp.arange(first), keys)
        return flat(out), k_more

    def more(params, tasks, rows, index, key, choose):
        key, k = jax.random.split(key)
        one = functools.partial(start_one, params, choose)
        return jax.vmap(one, (0, 0, None, 0))(rows, tasks, index, jax.random.split(k, tasks.shape[0])), key

    def start(runs, num_tasks, budget):
        t, v, r = jax.vmap(parts.transitions_of)(runs)
        unflat = lambda x: x.reshape(num_tasks, -1, *x.shape[1:])  # noqa: E731
        return parts.phase_start(*jax.tree.map(unflat, (t, v, r)), budget)

    def add(tally, first_steps, runs, budget):
        return parts.phase_add(tally, first_steps, budget, *jax.vmap(parts.transitions_of)(runs))

    def act(params, weights, obs, noise, t, deterministic):
        def one(w, o, z):
            mean, log_std = dist(params, w, o[None])
            if deterministic:
                return jnp.tanh(mean[0])
            return policies.tanh_gaussian(mean, log_std, z[t][None])[0][0]

        return jax.vmap(one)(weights, obs, noise)

    return Programs(launch, more, start, add, parts.phase_end, act)


class NativePEARL:
    """PEARL's collection and evaluation over host-stepped envs, for all seeds of a ``SeedLayout``.

    ``timings`` (seconds, accumulated; the benchmark reads and resets it): ``env`` (host stepping),
    ``policy`` (the per-step ``act`` calls), ``plan`` (the launch/start/add/end programs), ``learn``
    (storing and the gradient steps).
    """

    CALL_SECONDS = 4.0  # the target length of one call of gradient steps
    BEAT_SECONDS = 1.0  # while a call of gradient steps runs, the heartbeat's period

    def __init__(self, config: pearl.PEARLConfig, spec, num_seeds: int, capacity: int, threads: int | None = None):
        self.config, self.spec = config, spec
        self.layout = trainer_lib.SeedLayout(num_seeds)
        self.env_kwargs = dict(
            episode_length=spec.episode_length,
            contact_forces=spec.model_kwargs["contact_forces"],
            heading_bug=config.heading_bug,
            threads=threads,
        )
        probe = native_meta.MetaVecEnv(spec.name, 1, **self.env_kwargs)
        self.robot, self.length, self.family = probe.robot, probe.episode_length, probe.family
        self.envs: dict[int, native_meta.MetaVecEnv] = {1: probe}
        self.fns = pearl.make_functions(config, _Shapes(probe), self.family, capacity)
        self.parts = self.fns.parts
        self.progs = make_programs(config, self.fns, self.robot, self.length, probe.action_size)
        self.timings = dict.fromkeys(("env", "policy", "plan", "learn"), 0.0)
        self.heartbeat = trainer_lib.Heartbeat()  # beaten at every env step on the host
        self._build()

    def _build(self):
        layout, progs, parts, fns, config = self.layout, self.progs, self.parts, self.fns, self.config
        prior, posterior = parts.prior_choice, parts.posterior_choice

        def choose_of(kind, params):
            return prior if kind == "prior" else posterior(params)

        def begin(state):
            key, k_collect, k_train = jax.random.split(state.rng(), 3)
            ids, tasks, contexts, k_prior, k_post = parts.draw(state, k_collect)
            first, k_more = progs.launch(state.params, tasks, contexts, k_prior, config.num_steps_prior, prior)
            return (key, k_train, ids, tasks, contexts, k_post), first, k_more

        def initial(state):
            key, tasks, contexts, k_data = parts.initial_draw(state)
            first, k_more = progs.launch(state.params, tasks, contexts, k_data, config.num_initial_steps, prior)
            return (key, tasks, contexts), first, k_more

        def post_launch(params, tasks, rows, key):
            return progs.launch(params, tasks, rows, key, config.num_extra_rl_steps_posterior, posterior(params))

        def store(state, key, k_train, ids, phases):
            state, stats = parts.store(state, ids, phases)
            return fns.pend_training(state.replace(key=jax.random.key_data(key)), k_train, stats)

        def more(kind):
            return lambda params, tasks, rows, index, key: progs.more(
                params, tasks, rows, index, key, choose_of(kind, params)
            )

        budgets = {  # kind: (budget, tasks)
            "initial": (config.num_initial_steps, config.num_train_tasks),
            "prior": (config.num_steps_prior, config.num_tasks_sample),
            "posterior": (config.num_extra_rl_steps_posterior, config.num_tasks_sample),
        }
        p = layout.program
        self.programs = {
            "begin": p(begin, 0),
            "initial": p(initial, 0),
            "post_launch": p(post_launch, (0, 0, 0, 0)),
            "act": p(functools.partial(progs.act, deterministic=False), (0, 0, 0, 0, None)),
            "act_deterministic": p(functools.partial(progs.act, deterministic=True), (0, 0, 0, 0, None)),
            "end": p(progs.end, (0, 0)),
            "store": p(store, (0, 0, 0, 0, 0), donate=True),
            "train_steps": p(fns.train_steps, (0, None), donate=True),
            "initial_store": p(parts.initial_store, (0, 0, 0), donate=True),
            "finite": p(lambda state: trainer_lib.all_finite((state.params, state.target_v)), 0),
            "eval_begin": p(self._eval_begin, (0, None)),
            "eval_choose": p(self._eval_choose, (0, 0, 0, 0)),
            "eval_record": p(self._eval_record, (0, 0, 0)),
            "eval_end": p(self._eval_end, 0),
        }
        for kind, (budget, tasks) in budgets.items():
            self.programs[f"more_{kind}"] = p(more(kind), (0, 0, 0, None, 0))
            self.programs[f"start_{kind}"] = p(functools.partial(progs.start, num_tasks=tasks, budget=budget), 0)
            self.programs[f"add_{kind}"] = p(functools.partial(progs.add, budget=budget), (0, 0, 0))
        self.budgets = {kind: budget for kind, (budget, _) in budgets.items()}

    # --- host rollouts ------------------------------------------------------------------------

    def env(self, num_envs: int) -> native_meta.MetaVecEnv:
        """The (cached) vector env of ``num_envs`` envs."""
        if num_envs not in self.envs:
            self.envs[num_envs] = native_meta.MetaVecEnv(self.spec.name, num_envs, **self.env_kwargs)
        return self.envs[num_envs]

    def run(
        self, params, launch: Launch, deterministic: bool = False, what: str = "", stoppable: bool = False
    ) -> rollout_lib.Trajectory:
        """Every seed's launched trajectories on the host: a ``Trajectory`` in the layout, ``[(S,) E, T, ...]``.

        Beats the heartbeat at every env step (``what``: the phase, for progress lines); raises
        ``_Abandoned`` when it asks to stop and the caller can (``stoppable``: training, not evaluation)."""
        layout = self.layout
        act = self.programs["act_deterministic" if deterministic else "act"]
        host = jax.tree.map(np.asarray, layout.to_seeds((launch.tasks, launch.starts.qpos, launch.starts.qvel)))
        shape = host[1].shape[:2]  # [S, E]
        env = self.env(shape[0] * shape[1])
        flat = [x.reshape(env.num_envs, -1) for x in host]
        noise = launch.starts.noise

        def policy(t, obs):
            if self.heartbeat.beat(f"{what or 'trajectories'}, env step {t}/{self.length}") and stoppable:
                raise _Abandoned
            actions = act(params, launch.weights, layout.from_seeds(obs.reshape(*shape, -1)), noise, t)
            return np.asarray(layout.to_seeds(actions)).reshape(env.num_envs, -1)

        timings = meta_host.Timings()
        trajectory = meta_host.run(env, policy, *flat, self.length, timings)
        self.timings["env"] += timings.env_s
        self.timings["policy"] += timings.policy_s
        return layout.from_seeds(jax.tree.map(lambda x: x.reshape(*shape, *x.shape[1:]), trajectory))

    def _timed(self, fn, *args):
        t0 = time.perf_counter()
        out = jax.block_until_ready(fn(*args))
        self.timings["plan"] += time.perf_counter() - t0
        return out

    def phase(self, kind: str, params, tasks, rows, first: Launch, key, name: str = "") -> pearl.Phase:
        """``collect_trajectories`` of ``kind`` (``initial``, ``prior``, ``posterior``) from its first launch
        (``name``: the iteration, for progress lines; a stop at a heartbeat raises ``_Abandoned``)."""
        g, budget = self.programs, self.budgets[kind]
        what = f"{name}: {kind} trajectories"
        kept, tally = self._timed(g[f"start_{kind}"], self.run(params, first, what=what, stoppable=True))
        index = pearl.nominal_trajectories(budget, self.length)
        while np.any(np.asarray(tally.steps) < budget):  # an Ant fell: one more trajectory per task
            launch, key = self._timed(g[f"more_{kind}"], params, tasks, rows, index, key)
            tally = self._timed(
                g[f"add_{kind}"], tally, kept.steps, self.run(params, launch, what=what, stoppable=True)
            )
            index += 1
        return self._timed(g["end"], kept, tally)

    # --- the trainer's steps ------------------------------------------------------------------

    def initial_collection(self, state: pearl.PEARLState) -> pearl.PEARLState:
        (key, tasks, contexts), first, k_more = self._timed(self.programs["initial"], state)
        phase = self.phase("initial", state.params, tasks, contexts, first, k_more, "initial collection")
        return self.programs["initial_store"](state, key, phase)

    def collect(self, state: pearl.PEARLState, name: str = "iteration") -> tuple:
        """An iteration's collection (``Functions.collect`` before storing): ``(key, train key, ids, phases)``."""
        g = self.programs
        (key, k_train, ids, tasks, contexts, k_post), first, k_more = self._timed(g["begin"], state)
        prior = self.phase("prior", state.params, tasks, contexts, first, k_more, name)
        phases = [prior]
        if self.config.num_extra_rl_steps_posterior > 0:
            rows = (contexts, prior.transitions, prior.valid)
            first, k_more = self._timed(g["post_launch"], state.params, tasks, rows, k_post)
            phases.append(self.phase("posterior", state.params, tasks, rows, first, k_more, name))
        return key, k_train, ids, phases

    def learn(self, state: pearl.PEARLState, name: str = "iteration") -> pearl.PEARLState:
        """The state's pending gradient steps (``PEARLState.pending``), in calls of ``train_steps``
        sized to about ``CALL_SECONDS`` each from the measured time per step (the first a 1-step
        probe, each at most 10 times the last), the heartbeat beaten before each call and every
        ``BEAT_SECONDS`` while one runs ("iteration 3: gradient steps 120/2000": the steps done).
        A stop asked for at a beat raises ``_Abandoned`` once the running call (if any) has
        returned, with the state so far (its remaining steps pending)."""
        total, count = self.config.num_train_steps, 1
        pending = int(np.asarray(state.pending).max())  # every seed's: they step together
        while pending > 0:
            what = f"{name}: gradient steps {total - pending}/{total}"
            if self.heartbeat.beat(what):
                raise _Abandoned(state)
            count = min(count, pending)
            t0 = time.perf_counter()
            state = self.programs["train_steps"](state, np.int32(count))  # dispatched; runs meanwhile
            stop = self._wait(state, what)
            elapsed = time.perf_counter() - t0
            self.timings["learn"] += elapsed
            pending -= count
            if stop and pending > 0:
                raise _Abandoned(state)
            count = int(min(10 * count, max(1, self.CALL_SECONDS * count / elapsed)))
        return state

    def _wait(self, out, what: str) -> bool:
        """Blocks until ``out`` (a dispatched program's outputs) is computed, beating the heartbeat
        (``what``) every ``BEAT_SECONDS`` meanwhile (a step of the hyper model takes ~10 s on
        2 cores): True when a beat asked to stop."""
        waiter = threading.Thread(target=jax.block_until_ready, args=(out,), daemon=True)
        waiter.start()
        stop = False
        waiter.join(self.BEAT_SECONDS)
        while waiter.is_alive():
            stop = self.heartbeat.beat(what) or stop
            waiter.join(self.BEAT_SECONDS)
        jax.block_until_ready(out)  # at once now; raises here what the program raised
        return stop

    def metrics(self, state: pearl.PEARLState) -> dict:
        """The last iteration's metrics (``pearl.iteration_metrics``), ``{name: [S]}`` on the host."""
        sums = jax.device_get(self.layout.to_seeds(state.iteration_sums))
        return pearl.iteration_metrics(self.config, sums)

    def iteration(self, state: pearl.PEARLState, name: str = "iteration") -> tuple[pearl.PEARLState, dict]:
        """``pearl.iteration`` with the rollouts on the host: ``(state, metrics)`` (``{name: [S]}``).

        A stop at a heartbeat raises ``_Abandoned``: in the collection, before ``store`` (the first
        program that consumes ``state``), with no state (the one given is intact); in the gradient
        steps, with the state whose remaining steps are pending (``learn``)."""
        key, k_train, ids, phases = self.collect(state, name)
        t0 = time.perf_counter()
        state = jax.block_until_ready(self.programs["store"](state, key, k_train, ids, phases))
        self.timings["learn"] += time.perf_counter() - t0
        state = self.learn(state, name)
        return state, self.metrics(state)

    # --- evaluation ---------------------------------------------------------------------------

    def _eval_begin(self, state: pearl.PEARLState, step):
        """``evaluate_one``'s keys and tasks, the test tasks then as many training tasks, all
        ``[2N, runs]``: ``(tasks [2N, task], contexts, loop carries)``."""
        config, parts = self.config, self.parts
        k_test, k_train, k_subset = jax.random.split(jax.random.fold_in(state.eval_rng(), step), 3)
        pool = pearl.context_pool(self.family.name, state.train_tasks, state.test_tasks)
        subset = jax.random.randint(k_subset, (config.num_test_tasks,), 0, config.num_train_tasks)
        tasks = jnp.concatenate([state.test_tasks, state.train_tasks[subset]])
        n, runs = config.num_test_tasks, config.num_evals
        keys = jnp.concatenate([jax.random.split(k_test, (n, runs)), jax.random.split(k_train, (n, runs))])
        carries = jax.vmap(jax.vmap(parts.eval_carry))(keys)
        return tasks, parts.oracle(tasks, pool), carries

    def _eval_choose(self, params, carries, tasks, contexts):
        """Every run's next trajectory: ``(Launch [2N * runs], loop keys [2N, runs])``."""
        weights_of = policy_fns(self.config.model, self.parts.nets)[0]
        length, action_size = self.length, self.envs[1].action_size

        def one(carry, task, context):
            z, k_run, key = self.parts.eval_choose(params, carry, context)
            reset_key, _ = jax.random.split(k_run)  # rollout.rollout's reset key; deterministic: no noise
            qpos, qvel = native_meta.reset_state(self.robot, reset_key)
            starts = meta_host.Starts(qpos, qvel, jnp.zeros((length, action_size)))
            return Launch(task, weights_of(params, z), starts), key

        launch, keys = jax.vmap(jax.vmap(one, (0, None, None)))(carries, tasks, contexts)
        return jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), launch), keys

    def _eval_record(self, carries, keys, runs):
        """The loop states after one trajectory each (``runs`` ``[2N * R, T]``); a run that had its
        budget keeps its state (as in the vmapped ``while_loop``)."""
        budget = self.config.num_steps_per_eval
        t, v, r = jax.vmap(self.parts.transitions_of)(runs)
        shape = keys.shape[:2]
        t, v, r = jax.tree.map(lambda x: x.reshape(*shape, *x.shape[1:]), (t, v, r))
        new = jax.vmap(jax.vmap(self.parts.eval_record))(carries, keys, t, v, r)
        active = carries[2] < budget

        def keep(n, o):
            return jnp.where(active.reshape(*shape, *([1] * (n.ndim - 2))), n, o)

        return jax.tree.map(keep, new, carries)

    @staticmethod
    def _eval_end(carries):
        """``{'return', 'return_prior', 'return_train'}``, each ``[N]`` (means over runs)."""
        _, _, _, _, first, last, _ = carries
        first, last = first.mean(1), last.mean(1)
        n = first.shape[0] // 2
        return {"return": last[:n], "return_prior": first[:n], "return_train": last[n:]}

    def evaluate(self, state: pearl.PEARLState, step: int) -> dict:
        """``pearl.make_trainer``'s evaluation with host rollouts: ``{name: [S, N]}``."""
        g, budget = self.programs, self.config.num_steps_per_eval
        tasks, contexts, carries = g["eval_begin"](state, step)
        while np.any(np.asarray(carries[2]) < budget):
            launch, keys = g["eval_choose"](state.params, carries, tasks, contexts)
            carries = g["eval_record"](carries, keys, self.run(state.params, launch, deterministic=True))
        return jax.tree.map(np.asarray, self.layout.to_seeds(g["eval_end"](carries)))

    def close(self) -> None:
        for env in self.envs.values():
            env.close()


class _Shapes:
    """What ``pearl.make_functions`` reads of an env (its sizes), for the native path's functions."""

    def __init__(self, env: native_meta.MetaVecEnv):
        self.episode_length = env.episode_length
        self.observation_size, self.action_size = env.observation_size, env.action_size


def make_trainer(config: pearl.PEARLConfig, setting: trainer_lib.Setting) -> trainer_lib.Trainer:
    """PEARL's trainer over host-stepped envs; the same interface and state as ``pearl.make_trainer``'s.

    Programs: ``init`` and ``NativePEARL.programs``."""
    native = NativePEARL(config, setting.env, setting.num_seeds, pearl.replay_capacity(config, setting.buffer_size))
    init, init_program = native.layout.init(native.fns.init)

    def summary(state, sums, n):
        means = {k: v / n for k, v in sums.items()}
        return {**means, "finite": np.asarray(native.layout.to_seeds(native.programs["finite"](state)))}

    def run_chunk(state, start_step, num_steps):
        sums, done = None, 0

        def add(metrics):
            return metrics if sums is None else jax.tree.map(np.add, sums, metrics)

        try:
            pending = np.asarray(state.pending).max() > 0  # a call stopped in iteration start_step + 1's gradient steps
            if start_step == 0 and not pending:
                state = native.initial_collection(state)
            if pending:
                state = native.learn(state, f"iteration {start_step + 1}")
                sums, done = native.metrics(state), 1
            while done < num_steps:
                state, metrics = native.iteration(state, f"iteration {start_step + done + 1}")
                sums, done = add(metrics), done + 1
        except _Abandoned as stop:  # a stop at a heartbeat: ``done`` whole iterations, maybe part of the next
            # (the part: in the state, its remaining gradient steps pending; never in a call from step 0:
            # that is a run's first call, during which a signal ends the process at once (experiments/stops.py),
            # so a stored initial collection is never redone)
            state = state if stop.state is None else stop.state
            metrics = summary(state, sums, done) if done else None
            raise trainer_lib.CallStopped(state, done, metrics, partial=stop.state is not None) from None
        return state, summary(state, sums, num_steps)

    return trainer_lib.Trainer(
        init=init,
        run_chunk=run_chunk,
        evaluate=native.evaluate,
        programs={"init": init_program, **native.programs},
        metric_names=pearl.METRICS,
        extra_returns=("return_prior", "return_train"),
        heartbeat=native.heartbeat,
    )
