"""The suite's cases, in one registry: ``CASES``, each a function of keyword arguments that returns
one row (a dict of measurements). ``python -m benchmarks.cases '<json spec>'`` runs one in a fresh
process and prints ``RESULT <json>`` (``benchmarks.process``, which ``run.py`` and ``compare.py`` use).

Every case times its work one way (``benchmarks.timing``): built and compiled ahead of time
(``timing.aot``, the compile timed apart), warmed up, then a ``timing.Timer`` timed alone
(``timing.median_time``) or beside others (``timing.alternate``). The kinds: the device
(``matmul``); critics (``critic_fwd_bwd``); updates (``update_jax``, ``update_torch``,
``update_floor``, ``update_hlo``; ``CALLS``: the two updates as calls, for the suite's side-by-side
workers and ``precision.py``); environments (``env_steps``, ``native_mujoco``, ``gymnasium_steps``;
``env_timer``, which ``env_speed.py`` and ``gym_physics.py`` time); training (``train``,
``train_native``; ``chunk_timer``).

A new case: a function here marked ``@case`` that builds its work, times it through ``timing`` and
returns its row; the suite lists it in ``run.suite_cases``, a script may call it in-process.
"""

import collections
import re
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import flops as flop_model
from benchmarks import process, timing

OBS, ACT = 27, 8  # Brax Ant
CASES = {}


def case(fn):
    """Registers a case under its function's name (the spec's ``"case"``)."""
    CASES[fn.__name__] = fn
    return fn


@case
def matmul(n: int = 2048, repeats: int = 7, precision: str | None = None) -> dict:
    """The f32 matrix-multiply rate jax reaches on this device (the FLOP floor's denominator)."""
    name = timing.set_precision(precision)
    a = jax.random.normal(jax.random.key(0), (n, n))
    b = jax.random.normal(jax.random.key(1), (n, n))
    f, _ = timing.aot(jnp.matmul, a, b)
    f(a, b).block_until_ready()
    t = timing.median_time(lambda: f(a, b), repeats, inner=5)
    return {"n": n, "precision": name, "gflops": round(2 * n**3 / t / 1e9, 1)}


def _agent(algo: str, critic: str, compute_dtype: str = "float32"):
    """``(config, agent)``: the paper-default SAC or TD3 with this critic, at Ant dims."""
    from hyperjax.agents import registry

    algorithm = registry.get(algo)
    config = algorithm.make_config(critic=critic, compute_dtype=compute_dtype)
    return config, algorithm.make_agent(config, OBS, ACT)


@case
def update_floor(algo: str, critic: str, repeats: int = 15) -> dict:
    """What one update's parts cost alone: every matrix multiply of the compiled update, each
    timed standalone at its own shapes (summed), and the critic's Adam + Polyak step (memory-bound).
    Their sum is the practical floor of the update on this machine; compare with ``update_jax``."""
    import optax

    from hyperjax.train import trainer as trainer_lib
    from hyperjax.types import Transition

    config, agent = _agent(algo, critic)
    state = agent.init(jax.random.key(0))
    b = config.batch_size
    batch = Transition(jnp.zeros((b, OBS)), jnp.zeros((b, ACT)), jnp.zeros(b), jnp.ones(b), jnp.zeros((b, OBS)))
    update, _ = timing.aot(trainer_lib.jit_program(agent.update), state, batch, jax.random.key(1), jnp.int32(0))
    dots = flop_model.hlo_dots(update.as_text())
    gemm_s, gemm_flops = 0.0, 0
    for dot, count in collections.Counter(dots).items():
        ls, rs, lb, lc, rb, rc = dot
        a, c = jnp.ones(ls), jnp.ones(rs)
        dot_general = trainer_lib.jit_program(lambda a, c, d=((lc, rc), (lb, rb)): jax.lax.dot_general(a, c, d))
        f, _ = timing.aot(dot_general, a, c)
        f(a, c).block_until_ready()
        gemm_s += count * timing.median_time(lambda f=f, a=a, c=c: f(a, c), repeats)
        gemm_flops += count * flop_model.dot_flops(dot)
    optimizer = optax.adam(1e-4)
    params = state.critic_params

    def optimizer_step(params, target, opt_state, grads):
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        return params, optax.incremental_update(params, target, 0.005), opt_state

    step = trainer_lib.jit_program(optimizer_step, donate_argnums=(0, 1, 2))
    holder = [params, state.target_critic_params, optimizer.init(params)]
    grads = jax.tree.map(jnp.ones_like, params)

    def one():
        holder[:] = step(*holder, grads)
        return holder[0]

    jax.block_until_ready(one())
    optimizer_s = timing.median_time(one, repeats)
    return {
        "algo": algo,
        "critic": critic,
        "dots": len(dots),
        "gemm_gflop": round(gemm_flops / 1e9, 2),
        "gemm_ms": round(1e3 * gemm_s, 2),
        "optimizer_ms": round(1e3 * optimizer_s, 2),
        "floor_ms": round(1e3 * (gemm_s + optimizer_s), 2),
    }


@case
def critic_fwd_bwd(critic: str, batch: int = 256, repeats: int = 5) -> dict:
    """Forward + backward (grad of sum of Q w.r.t. params) of a twin critic at paper size."""
    from hyperjax.nn import critics, summary

    module = critics.make_critic(critic, action_size=ACT)
    obs = jax.random.normal(jax.random.key(1), (batch, OBS))
    act = jax.random.uniform(jax.random.key(2), (batch, ACT), minval=-1, maxval=1)
    params = module.init(jax.random.key(0), obs, act)
    compiled, compile_s = timing.aot(jax.grad(lambda p: module.apply(p, obs, act).sum()), params)
    compiled(params)
    t = timing.median_time(lambda: compiled(params), repeats, inner=3)
    flops = (compiled.cost_analysis() or {}).get("flops", float("nan"))
    return {
        "critic": critic,
        "params": summary.count_params(params),
        "compile_s": round(compile_s, 2),
        "ms": round(1e3 * t, 3),
        "xla_gflop": round(flops / 1e9, 3),
        "memory_mb": timing.memory_mb(compiled),
    }


def update_jax_call(algo: str, critic: str, precision: str | None = None, compute_dtype: str = "float32"):
    """``(call, info)``: ``call()`` runs one full update as the training loop does (sample from the
    device replay + update, the state donated); TD3 cycles through its policy delay as training does.
    ``precision``: jax's default matmul precision for the run (``None``: the backend's)."""
    from hyperjax.train import replay
    from hyperjax.train import trainer as trainer_lib
    from hyperjax.types import Transition

    precision_name = timing.set_precision(precision)
    config, agent = _agent(algo, critic, compute_dtype)
    state = agent.init(jax.random.key(0))
    rng = np.random.default_rng(0)
    n = 10_000
    buffer = replay.Replay(
        data=Transition(
            obs=jnp.asarray(rng.normal(size=(n, OBS)), jnp.float32),
            action=jnp.asarray(rng.uniform(-1, 1, (n, ACT)), jnp.float32),
            reward=jnp.asarray(rng.normal(size=n), jnp.float32),
            discount=jnp.ones(n),
            next_obs=jnp.asarray(rng.normal(size=(n, OBS)), jnp.float32),
        ),
        position=jnp.zeros((), jnp.int32),
        size=jnp.asarray(n, jnp.int32),
    )

    def step_fn(state, key, step):
        sample_key, update_key = jax.random.split(key)
        return agent.update(state, replay.sample(buffer, sample_key, config.batch_size), update_key, step)

    key = jax.random.key(1)
    steps = [jnp.asarray(i, jnp.int32) for i in range(getattr(config, "policy_delay", 1))]
    compiled, compile_s = timing.aot(trainer_lib.jit_program(step_fn, donate_argnums=0), state, key, steps[0])
    holder = {"state": state, "calls": 0}

    def call():
        step = steps[holder["calls"] % len(steps)]
        holder["state"], metrics = compiled(holder["state"], key, step)
        holder["calls"] += 1
        return metrics

    for _ in range(2 * len(steps)):
        jax.block_until_ready(call())
    xla = (compiled.cost_analysis() or {}).get("flops", float("nan"))
    info = {
        "framework": "jax",
        "precision": precision_name,
        "compute_dtype": compute_dtype,
        "algo": algo,
        "critic": critic,
        "batch": config.batch_size,
        "compile_s": round(compile_s, 2),
        "analytic_gflop": round(flop_model.update_flops(algo, critic, OBS, ACT, config.batch_size) / 1e9, 2),
        "xla_gflop": round(xla / 1e9, 2),
        "memory_mb": timing.memory_mb(compiled),
    }
    return call, info


def update_torch_call(algo: str, critic: str, tf32: bool = False):
    """``(call, info)`` for the authors' PyTorch update (benchmarks/torch_reference.py): ``call()``
    runs one update, sampling its batch from a Python replay list, as their code does per step.
    ``tf32``: let CUDA matmuls run as TF32 (PyTorch's default, and the authors' run, is full f32)."""
    import torch

    from benchmarks import torch_reference as ref

    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32

    torch.manual_seed(0)
    agent = (ref.SAC if algo == "sac" else ref.TD3)(critic, OBS, ACT)
    buffer = ref.random_replay(OBS, ACT)
    for _ in range(4):
        agent.update(buffer)
    info = {
        "framework": "torch",
        "torch": torch.__version__,
        "device": str(ref.DEVICE),
        "tf32": tf32,
        "threads": torch.get_num_threads(),
        "algo": algo,
        "critic": critic,
        "batch": agent.batch_size,
    }
    return (lambda: agent.update(buffer)), info


# The updates as ``(call, info)``: the suite's side-by-side workers (``process.Worker``) serve these.
CALLS = {"update_jax": update_jax_call, "update_torch": update_torch_call}


@case
def update_hlo(algo: str, critic: str) -> dict:
    """A fingerprint of the update's optimised XLA program at paper size (Ant dims), source
    locations stripped: two checkouts with the same fingerprint run the same program, so their
    update speed can only differ by noise (``benchmarks.compare``)."""
    import hashlib

    from hyperjax.train import trainer as trainer_lib
    from hyperjax.types import Transition

    config, agent = _agent(algo, critic)
    b = config.batch_size
    batch = Transition(jnp.zeros((b, OBS)), jnp.zeros((b, ACT)), jnp.zeros(b), jnp.ones(b), jnp.zeros((b, OBS)))
    state = jax.eval_shape(agent.init, jax.random.key(0))
    program = trainer_lib.jit_program(agent.update, donate_argnums=0)
    text = timing.aot(program, state, batch, jax.random.key(1), jnp.int32(0))[0].as_text()
    text = re.sub(r", metadata=\{[^}]*\}", "", text)
    lines = [line for line in text.splitlines()[1:] if not re.match(r'^\d+ ["{]', line)]  # file/frame tables
    text = "\n".join(re.sub(r"stack_frame_id=\d+", "", line) for line in lines)
    return {"algo": algo, "critic": critic, "hlo_sha256": hashlib.sha256(text.encode()).hexdigest()[:16]}


def whole_cycles(algo: str, inner: int) -> int:
    """TD3 alternates critic-only and actor steps: time whole delay cycles (an even count)."""
    return max(2, inner + inner % 2) if algo == "td3" else inner


@case
def update_jax(
    algo: str, critic: str, repeats: int = 5, inner: int = 3, precision: str | None = None, compute_dtype="float32"
) -> dict:
    """One full update of hyperjax, timed alone (``benchmarks.run`` times it beside PyTorch)."""
    call, info = update_jax_call(algo, critic, precision, compute_dtype)
    return {**info, "ms": round(1e3 * timing.median_time(call, repeats, whole_cycles(algo, inner)), 2)}


@case
def update_torch(algo: str, critic: str, repeats: int = 5, inner: int = 3, tf32: bool = False) -> dict:
    """The authors' PyTorch update, timed alone (``benchmarks.run`` times it beside hyperjax)."""
    call, info = update_torch_call(algo, critic, tf32)
    return {**info, "ms": round(1e3 * timing.median_time(call, repeats, whole_cycles(algo, inner)), 2)}


def env_timer(env, num_envs: int, steps: int, batched: bool | None = None) -> tuple[float, timing.Timer]:
    """``(compile_s, timer)`` of stepping ``num_envs`` envs ``steps`` steps with zero actions: one jitted
    ``lax.scan`` of ``env.step`` (vmapped over the envs; a single env unbatched unless ``batched``),
    each block going on from the last one's states; the timer's unit is one env step."""
    batched = num_envs > 1 if batched is None else batched
    step = jax.vmap(env.step) if batched else env.step
    action = jnp.zeros((num_envs, env.action_size) if batched else env.action_size)
    keys = jax.random.split(jax.random.key(0), num_envs)
    state = jax.jit(jax.vmap(env.reset) if batched else env.reset)(keys if batched else keys[0])
    # strong types, as the scan's carry comes out (reset may make weakly typed leaves)
    state = jax.tree.map(lambda x: jnp.asarray(x, x.dtype) if getattr(x, "weak_type", False) else x, state)
    rollout, compile_s = timing.aot(
        lambda s: jax.lax.scan(lambda s, _: (step(s, action), ()), s, None, steps)[0], state
    )
    holder = [jax.block_until_ready(rollout(state))]  # warm-up

    def run():
        holder[0] = rollout(holder[0])
        return holder[0]

    return compile_s, timing.timer(run, units=num_envs * steps)


@case
def env_steps(env: str, backend: str, num_envs: int, steps: int = 200, repeats: int = 3, preset: str = "brax") -> dict:
    """Env steps/s of a batch of environments (vmapped), jitted scan of ``steps`` steps (``env_timer``).

    ``preset='brax'`` by default: Brax's own task on every backend (the ``paper`` Ant needs MJX's
    contact forces; ``benchmarks/env_speed.py --contact`` measures what they cost)."""
    from hyperjax.envs import registry

    compile_s, timer = env_timer(registry.make(env, backend=backend, preset=preset), num_envs, steps, batched=True)
    t = timing.median(timer, repeats)
    return {
        "env": env,
        "backend": backend,
        "num_envs": num_envs,
        "compile_s": round(compile_s, 2),
        "steps_per_s": round(1 / t),
    }


@case
def native_mujoco(env: str = "ant", steps: int = 2000) -> dict:
    """MuJoCo's C engine (``mujoco.mj_step``) on the same model Brax's MJX backend loads."""
    import mujoco
    from etils import epath

    asset = {"halfcheetah": "half_cheetah"}.get(env, env)  # Brax's file names
    path = epath.resource_path("brax") / f"envs/assets/{asset}.xml"
    model = mujoco.MjModel.from_xml_path(str(path))
    data = mujoco.MjData(model)
    frame_skip = 5  # Brax Ant / HalfCheetah take 5 physics steps per env step
    mujoco.mj_step(model, data)

    def run():
        for _ in range(steps * frame_skip):
            mujoco.mj_step(model, data)

    t = timing.timer(run, units=steps)()
    return {"env": env, "backend": "native mujoco (C)", "num_envs": 1, "steps_per_s": round(1 / t)}


def _sac_training(critic: str, env, episode_length: int, seeds: int):
    """``(config, agent, loop_config)`` of a paper-default SAC for the training cases (100k buffer)."""
    from hyperjax.agents import sac
    from hyperjax.train import loop

    config = sac.SACConfig(critic=critic)
    agent = sac.make_agent(config, env.observation_size, env.action_size)
    loop_config = loop.LoopConfig(
        batch_size=config.batch_size,
        start_steps=0,
        update_after=sac.ALGORITHM.first_update(config),
        buffer_size=100_000,
        eval_episodes=1,
        episode_length=episode_length,
        num_seeds=seeds,
    )
    return config, agent, loop_config


@case
def gymnasium_steps(env: str = "Ant-v5", num_envs: int = 1, steps: int = 1000) -> dict:
    """Env steps/s of Gymnasium's task (C engine + its Python wrappers), envs stepped in turn."""
    from hyperjax.envs import native

    e = native.VecEnv(env, num_envs)
    e.reset(range(num_envs))
    actions = np.random.default_rng(0).uniform(-1, 1, (steps, num_envs, e.action_size))
    e.step(actions[0])

    def run():
        for a in actions:
            e.step(a)

    t = timing.timer(run, units=num_envs * steps)()
    return {
        "env": env,
        "backend": "native (gymnasium)",
        "num_envs": num_envs,
        "steps_per_s": round(1 / t),
    }


def chunk_timer(trainer, state, start: int, chunk: int) -> timing.Timer:
    """A timer of training: each block one ``trainer.run_chunk`` of ``chunk`` env steps, going on from
    where the last ended (the first at ``start``); the unit is one env step (of every seed)."""
    holder = {"state": state, "step": start}

    def run():
        holder["state"], _ = trainer.run_chunk(holder["state"], holder["step"], chunk)
        holder["step"] += chunk
        return holder["state"]

    return timing.timer(run, units=chunk)


@case
def train(env: str, critic: str, seeds: int, chunk: int, repeats: int = 3) -> dict:
    """End-to-end SAC training throughput, compile time and memory of the training chunk."""
    from hyperjax.envs import registry
    from hyperjax.train import loop

    e = registry.make(env)
    config, agent, loop_config = _sac_training(critic, e, registry.default_episode_length(env), seeds)
    trainer = loop.make_trainer(agent, e, loop_config)
    state = trainer.init(jax.vmap(jax.random.key)(np.arange(seeds)))
    start = config.batch_size + 1
    program = trainer.programs["chunk"]  # in this seed count's layout (trainer.SeedLayout)
    compiled, compile_s = timing.aot(program, state, jnp.int32(start), jnp.int32(chunk))
    state, _ = trainer.run_chunk(state, start, chunk)
    jax.block_until_ready(state)
    t = timing.median(chunk_timer(trainer, state, start + chunk, chunk), repeats)
    return {
        "env": env,
        "obs": e.observation_size,
        "critic": critic,
        "seeds": seeds,
        "compile_s": round(compile_s, 1),
        "env_steps_per_s": round(1 / t, 2),
        "seed_steps_per_s": round(seeds / t, 2),
        "memory_mb": timing.memory_mb(compiled),
        "peak_mb": timing.peak_mb(),
    }


@case
def train_native(env: str, critic: str, seeds: int, chunk: int, contact_obs: bool = True, repeats: int = 3) -> dict:
    """End-to-end SAC throughput of the host loop (native physics, one jitted call per step).

    ``contact_obs=False`` drops Ant-v5's 78 contact-force dims (27 left, as MJX Ant) for a like-for-like
    comparison with ``train``."""
    from hyperjax.envs import native
    from hyperjax.train import host_loop

    kwargs = {} if contact_obs else {"include_cfrc_ext_in_observation": False}
    train_env, eval_env = native.VecEnv(env, seeds, **kwargs), native.VecEnv(env, seeds, **kwargs)
    config, agent, loop_config = _sac_training(critic, train_env, train_env.episode_length, seeds)
    trainer = host_loop.make_trainer(agent, train_env, eval_env, loop_config)
    state = trainer.init(jax.vmap(jax.random.key)(np.arange(seeds)))
    start = config.batch_size + 1  # every step of both chunks updates, as in `train`
    t0 = time.perf_counter()
    state, _ = trainer.run_chunk(state, start, chunk)  # includes compilation
    first_s = time.perf_counter() - t0
    t = timing.median(chunk_timer(trainer, state, start + chunk, chunk), repeats)
    return {
        "env": env,
        "obs": train_env.observation_size,
        "critic": critic,
        "seeds": seeds,
        "first_chunk_s": round(first_s, 1),
        "env_steps_per_s": round(1 / t, 2),
        "seed_steps_per_s": round(seeds / t, 2),
    }


if __name__ == "__main__":
    process.child_main(CASES, CALLS, sys.argv[1:])
