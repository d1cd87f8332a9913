"""Environment steps/s: Brax backends, the meta tasks at MAML's batch, and native MuJoCo on the same model.

Run:
  python -m benchmarks.env_speed --env=ant --backends=mjx,generalized,positional,spring
  python -m benchmarks.env_speed --meta            # each meta family, 800 envs, MJX vs native MuJoCo
  python -m benchmarks.env_speed --contact         # `ant` paper preset (contact forces) vs brax, 1 and 800 envs

MJX numbers are a jitted ``lax.scan`` of ``steps`` env steps of ``jax.vmap(env.step)`` over the batch
(``cases.env_timer``; compile timed apart). The cases compared with each other are timed in turn
(``timing.alternate``), several rounds, best round each (a fair comparison while other processes load
the CPU). Native numbers step the same MuJoCo model (Brax's xml
with the solver options Brax sets for MJX) in MuJoCo's C engine, 5 physics steps per env step, through
``mujoco.rollout`` (C++ threads over the batch, one call per env step as a host loop would make) and
a plain Python loop of ``mujoco.mj_step`` over the batch's ``MjData``.
"""

import argparse
import copy
import os

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from mujoco import rollout as mj_rollout

from benchmarks import cases, timing
from hyperjax.envs import meta, registry

MAML_BATCH = 800  # 40 tasks x 20 episodes
MUJOCO_FAMILIES = ("halfcheetah_vel", "halfcheetah_fwd_back", "ant_vel", "ant_fwd_back")


def measure(env_name: str, backend: str, steps: int = 1000, preset: str = "brax") -> dict:
    """Steps/s of one env (a jitted lax.scan of ``steps`` steps)."""
    env = registry.make(env_name, backend=backend, preset=preset)
    compile_s, timer = cases.env_timer(env, 1, steps)
    result = best_of({"": timer}, 3)[""]
    return {"env": env_name, "backend": backend, "preset": preset, "compile_s": round(compile_s, 1), **result}


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
    """``timing.Timer``s (per env step) of native MuJoCo on ``env``'s model: ``mujoco.rollout`` (one call
    per env step as a host loop makes, C++ threads over the batch) and a Python loop of ``mj_step`` over
    up to 200 MjData."""
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
        states = holder[0]
        for i in range(steps):  # the policy would pick controls[i + 1] from these states
            states = runner.rollout(model, datas, states, controls[i])[0][:, -1]
        holder[0] = states

    loop_datas = [mujoco.MjData(model) for _ in range(min(num_envs, 200))]

    def loop():
        for i in range(steps):
            for b, data in enumerate(loop_datas):
                data.ctrl[:] = controls[i, b, 0]
                for _ in range(frame_skip):
                    mujoco.mj_step(model, data)

    rollout()  # warm-up
    return {
        f"native mujoco.rollout ({nthread} threads)": timing.timer(rollout, units=num_envs * steps),
        "native mj_step Python loop": timing.timer(loop, units=len(loop_datas) * steps),
    }


def best_of(timers: dict[str, timing.Timer], rounds: int) -> dict:
    """``{name: {"steps_per_s": best}}`` of timers of env steps timed in alternation ``rounds`` times
    (fair under a load that changes while the benchmark runs)."""
    times = timing.alternate(timers, rounds)
    return {name: {"steps_per_s": round(1 / min(times[name]))} for name in timers}


def meta_speeds(num_envs: int = MAML_BATCH, steps: int = 20, rounds: int = 5) -> None:
    """Each MuJoCo meta family at MAML's batch on MJX, against native MuJoCo on the robot's model."""
    for robot in ("halfcheetah", "ant"):
        timers, compiles = {}, {}
        for name in (n for n in MUJOCO_FAMILIES if n.startswith(robot)):
            env, _ = meta.make(name)
            env_with_task = meta.with_task(env, jnp.ones(1))
            compiles[name], timers[f"{name} MJX (XLA)"] = cases.env_timer(env_with_task, num_envs, steps)
        timers.update(native_timers(env, num_envs, steps))
        for name, result in best_of(timers, rounds).items():
            compile_s = compiles.get(name.split(" ")[0], "")
            compile_s = round(compile_s, 1) if compile_s != "" else ""
            print({"case": name, "num_envs": num_envs, "compile_s": compile_s, **result}, flush=True)


def contact_speeds(steps: int = 20, rounds: int = 5) -> None:
    """The `ant` paper preset (MJX contact forces, 111-dim obs) against Brax's Ant, 1 and 800 envs."""
    for num_envs, num_steps in ((1, 1000), (MAML_BATCH, steps)):
        timers, compiles = {}, {}
        for preset in ("paper", "brax"):
            env = registry.make("ant", preset=preset)
            compiles[preset], timers[preset] = cases.env_timer(env, num_envs, num_steps)
        for preset, result in best_of(timers, rounds).items():
            compile_s = round(compiles[preset], 1)
            print({"env": "ant", "preset": preset, "num_envs": num_envs, "compile_s": compile_s, **result})


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
