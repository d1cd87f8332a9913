"""Environment steps/s: Brax backends, the meta tasks at MAML's batch, and native MuJoCo on the same model.

Run:
  python -m benchmarks.env_speed --env=ant --backends=mjx,generalized,positional,spring
  python -m benchmarks.env_speed --meta            # each meta family, 800 envs, MJX vs native MuJoCo
  python -m benchmarks.env_speed --contact         # `ant` paper preset (contact forces) vs brax, 1 and 800 envs

MJX numbers are a jitted ``lax.scan`` of ``steps`` env steps of ``jax.vmap(env.step)`` over the batch
(compile excluded). The cases compared with each other are timed in turn, several rounds, best round
each (a fair comparison while other processes load the CPU). Native numbers step the same MuJoCo model (Brax's xml
with the solver options Brax sets for MJX) in MuJoCo's C engine, 5 physics steps per env step, through
``mujoco.rollout`` (C++ threads over the batch, one call per env step as a host loop would make) and
a plain Python loop of ``mujoco.mj_step`` over the batch's ``MjData``.
"""

import argparse
import copy
import os
import time

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from mujoco import rollout as mj_rollout

from hyperjax.envs import meta, registry

MAML_BATCH = 800  # 40 tasks x 20 episodes
MUJOCO_FAMILIES = ("halfcheetah_vel", "halfcheetah_fwd_back", "ant_vel", "ant_fwd_back")


def measure(env_name: str, backend: str, steps: int = 1000, preset: str = "brax") -> dict:
    """Steps/s of one env (a jitted lax.scan of ``steps`` steps)."""
    env = registry.make(env_name, backend=backend, preset=preset)
    compile_s, run = mjx_timer(env, 1, steps)
    return {"env": env_name, "backend": backend, "preset": preset, "compile_s": compile_s, **best_of({"": run}, 3)[""]}


def mjx_timer(env, num_envs: int, steps: int):
    """``(compile_s, run)``: ``run()`` times ``steps`` steps of ``num_envs`` envs (vmapped unless 1), one
    jitted lax.scan, and returns ``(seconds, env steps)``."""
    batched = num_envs > 1
    step = jax.vmap(env.step) if batched else env.step
    action = jnp.zeros((num_envs, env.action_size) if batched else env.action_size)

    @jax.jit
    def rollout(state):
        return jax.lax.scan(lambda s, _: (step(s, action), ()), state, None, steps)[0]

    keys = jax.random.split(jax.random.key(0), num_envs)
    state = jax.jit(jax.vmap(env.reset) if batched else env.reset)(keys if batched else keys[0])
    t0 = time.perf_counter()
    state = jax.block_until_ready(rollout(state))
    compile_s = time.perf_counter() - t0
    # a second warm-up call: reset's output differs in weak types from step's, which retraces once
    holder = [jax.block_until_ready(rollout(state))]

    def run():
        t0 = time.perf_counter()
        holder[0] = jax.block_until_ready(rollout(holder[0]))
        return time.perf_counter() - t0, num_envs * steps

    return round(compile_s, 1), run


def native_model(env) -> mujoco.MjModel:
    """The MjModel of a Brax env with the solver options Brax set on its MJX system."""
    sys = env.unwrapped.sys
    model = copy.copy(sys.mj_model)
    model.opt.solver = int(sys.opt.solver)
    model.opt.iterations = int(sys.opt.iterations)
    model.opt.ls_iterations = int(sys.opt.ls_iterations)
    model.opt.disableflags = int(sys.opt.disableflags)
    model.opt.timestep = float(sys.opt.timestep)
    return model


def native_timers(env, num_envs: int, steps: int = 20, frame_skip: int = 5) -> dict:
    """Timers of native MuJoCo on ``env``'s model: ``mujoco.rollout`` (one call per env step as a host
    loop makes, C++ threads over the batch) and a Python loop of ``mj_step`` over up to 200 MjData."""
    model = native_model(env)
    nthread = os.cpu_count() or 1
    datas = [mujoco.MjData(model) for _ in range(nthread)]
    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
    mujoco.mj_forward(model, datas[0])
    state0 = np.empty(mujoco.mj_stateSize(model, spec))
    mujoco.mj_getState(model, datas[0], state0, spec)
    controls = np.random.default_rng(0).uniform(-1, 1, (steps, num_envs, 1, model.nu))
    controls = np.repeat(controls, frame_skip, axis=2)  # [steps, envs, frame_skip, nu]
    runner = mj_rollout.Rollout(nthread=nthread)
    holder = [np.tile(state0, (num_envs, 1))]

    def rollout():
        t0 = time.perf_counter()
        states = holder[0]
        for i in range(steps):  # the policy would pick controls[i + 1] from these states
            states = runner.rollout(model, datas, states, controls[i])[0][:, -1]
        holder[0] = states
        return time.perf_counter() - t0, num_envs * steps

    loop_datas = [mujoco.MjData(model) for _ in range(min(num_envs, 200))]

    def loop():
        t0 = time.perf_counter()
        for i in range(steps):
            for b, data in enumerate(loop_datas):
                data.ctrl[:] = controls[i, b, 0]
                for _ in range(frame_skip):
                    mujoco.mj_step(model, data)
        return time.perf_counter() - t0, len(loop_datas) * steps

    rollout()  # warm-up
    return {f"native mujoco.rollout ({nthread} threads)": rollout, "native mj_step Python loop": loop}


def best_of(timers: dict, rounds: int) -> dict:
    """``{name: {"steps_per_s": best}}``, the timers called in turn ``rounds`` times (fair under a load
    that changes while the benchmark runs)."""
    best = {name: 0.0 for name in timers}
    for _ in range(rounds):
        for name, run in timers.items():
            seconds, env_steps = run()
            best[name] = max(best[name], env_steps / seconds)
    return {name: {"steps_per_s": round(b)} for name, b in best.items()}


def meta_speeds(num_envs: int = MAML_BATCH, steps: int = 20, rounds: int = 5) -> None:
    """Each MuJoCo meta family at MAML's batch on MJX, against native MuJoCo on the robot's model."""
    for robot in ("halfcheetah", "ant"):
        timers, compiles = {}, {}
        for name in (n for n in MUJOCO_FAMILIES if n.startswith(robot)):
            env, _ = meta.make(name)
            compiles[name], timers[f"{name} MJX (XLA)"] = mjx_timer(meta.with_task(env, jnp.ones(1)), num_envs, steps)
        timers.update(native_timers(env, num_envs, steps))
        for name, result in best_of(timers, rounds).items():
            compile_s = compiles.get(name.split(" ")[0], "")
            print({"case": name, "num_envs": num_envs, "compile_s": compile_s, **result}, flush=True)


def contact_speeds(steps: int = 20, rounds: int = 5) -> None:
    """The `ant` paper preset (MJX contact forces, 111-dim obs) against Brax's Ant, 1 and 800 envs."""
    for num_envs, num_steps in ((1, 1000), (MAML_BATCH, steps)):
        timers, compiles = {}, {}
        for preset in ("paper", "brax"):
            env = registry.make("ant", preset=preset)
            compiles[preset], timers[preset] = mjx_timer(env, num_envs, num_steps)
        for preset, result in best_of(timers, rounds).items():
            print({"env": "ant", "preset": preset, "num_envs": num_envs, "compile_s": compiles[preset], **result})


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="ant")
    parser.add_argument("--backends", default=",".join(registry.BACKENDS))
    parser.add_argument("--preset", default="brax", help="env preset of the backend comparison (paper Ant: mjx only)")
    parser.add_argument("--meta", action="store_true", help="meta families at MAML's batch, MJX vs native")
    parser.add_argument("--contact", action="store_true", help="`ant` paper (contact forces) vs brax preset")
    parser.add_argument("--steps", type=int, default=20, help="env steps per timed call (--meta, --contact)")
    args = parser.parse_args()
    print(f"device: {jax.devices()[0].device_kind}, jax {jax.__version__}, mujoco {mujoco.__version__}")
    if args.meta:
        meta_speeds(steps=args.steps)
    if args.contact:
        contact_speeds(args.steps)
    if not (args.meta or args.contact):
        for backend in args.backends.split(","):
            print(measure(args.env, backend, preset=args.preset), flush=True)


if __name__ == "__main__":
    main()
