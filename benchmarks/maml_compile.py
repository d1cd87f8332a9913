"""Compile time of MAML's programs on this machine, MJX against the native path (no program is run).

Run: python -m benchmarks.maml_compile --env=halfcheetah_vel --policies=vanilla,hyper --backends=native,mjx
Writes benchmarks/results/<platform>_maml_compile.{json,md}.

Every program a run compiles before its first iteration and evaluation, lowered and compiled ahead of
time (``.lower(...).compile()``) at the paper's sizes with the persistent compilation cache off:
- mjx: the trainer's ``run_chunk`` (a whole iteration: two rollouts of every task's episodes, the
  inner step and the TRPO step, in one program) and ``evaluate`` (two more rollouts); and, to see
  what makes them large, one rollout of every task's episodes alone (``rollout``) and the meta-step
  alone (``meta_step``), with the lowered program's size (StableHLO characters, ``while`` loops).
- native: ``NativeMAML.programs`` (``draw``, ``start``, ``act``, ``adapt``, ``learn`` and evaluation's
  ``start``; evaluation's ``act`` and ``adapt`` compile again for its 20 test tasks, as big as training's).
"""

import argparse
import json
import os
import re
import sys
import time

import jax
import numpy as np

from benchmarks import maml_speed
from hyperjax.agents import maml, maml_host
from hyperjax.envs import registry
from hyperjax.train import rollout as rollout_lib
from hyperjax.train import trainer as trainer_lib


def _compile(lowered) -> dict:
    text = lowered.as_text()
    t0 = time.perf_counter()
    lowered.compile()
    whiles = len(re.findall(r"stablehlo.while", text))
    return {"compile_s": time.perf_counter() - t0, "chars": len(text), "whiles": whiles}


def measure(env_name: str, policy: str, backend: str) -> list[dict]:
    config = maml.MAMLConfig(policy=policy)
    spec = registry.EnvSpec(env_name, backend=backend)
    setting = trainer_lib.Setting(env=spec, num_seeds=1, eval_episodes=20, buffer_size=1)
    rows, base = [], dict(env=env_name, policy=policy, backend=backend, load=maml_speed._load())

    def add(name, lowered):
        rows.append({**base, "program": name, **_compile(lowered)})
        maml_speed._log(f"{backend} {policy} {name}: {rows[-1]['compile_s']:.1f} s")
        print(json.dumps(rows[-1]), flush=True)

    if backend == "native":
        native = maml_host.NativeMAML(config, spec, 1, 20)
        state = jax.jit(native.init_one)(jax.random.key(0))
        p = native.programs
        add("draw", p["draw"].lower(state))
        tasks, data_key, next_key = p["draw"](state)
        start = native._start[config.fast_batch]
        add("start", start.lower(state.params, tasks, state.train_tasks, data_key))
        plan = start(state.params, tasks, state.train_tasks, data_key)
        obs = np.zeros((config.meta_batch, config.fast_batch, native.train_env.observation_size), np.float32)
        add("act", p["act"].lower(plan.weights, obs, plan.starts.noise, 0))
        length, n_obs, n_act = native.train_env.episode_length, obs.shape[-1], native.train_env.action_size
        shape = (config.meta_batch, config.fast_batch, length)
        spec_tr = rollout_lib.Trajectory(
            obs=jax.ShapeDtypeStruct((*shape, n_obs), np.float32),
            next_obs=jax.ShapeDtypeStruct((*shape, n_obs), np.float32),
            action=jax.ShapeDtypeStruct((*shape, n_act), np.float32),
            reward=jax.ShapeDtypeStruct(shape, np.float32),
            done=jax.ShapeDtypeStruct(shape, np.float32),
            truncation=jax.ShapeDtypeStruct(shape, np.float32),
            info={},
        )
        add("adapt", p["adapt"].lower(state.params, plan, spec_tr))
        pre, post_plan = jax.eval_shape(p["adapt"], state.params, plan, spec_tr)
        add("learn", p["learn"].lower(state, next_key, post_plan, pre, spec_tr))
        test_tasks, eval_key = p["eval_tasks"](state, 0)
        add("eval start", native._start[20].lower(state.params, test_tasks, state.train_tasks, eval_key))
        native.close()
        return rows
    trainer = maml.make_trainer(config, setting)
    state = jax.eval_shape(trainer.init, jax.random.key(0)[None])
    add("run_chunk", trainer.programs["run_chunk"].lower(state, 0, 1))
    add("evaluate", trainer.programs["evaluate"].lower(state, 0))
    env, family = spec.make_meta()
    fns = maml.make_functions(config, env, family)
    one = jax.eval_shape(fns.init, jax.random.key(0))
    tasks = jax.ShapeDtypeStruct((config.meta_batch, family.task_size), np.float32)
    rollout = jax.jit(lambda params, tasks, pool, key: fns.returns(params, tasks, pool, key, config.fast_batch))
    add("rollout", rollout.lower(one.params, tasks, one.train_tasks, jax.random.key(1)))
    batch = jax.eval_shape(fns.collect, one.params, one.train_tasks, jax.random.key(1))
    add("meta_step", jax.jit(fns.meta_step).lower(one.params, batch))
    return rows


def write(rows: list[dict], path: str) -> None:
    lines = [
        f"# MAML's compile times on {maml_speed._cpu()}",
        "",
        f"jax {jax.__version__}, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, persistent cache off. Command: "
        "`python -m benchmarks.maml_compile` (programs: its docstring). Paper sizes (40 tasks x 20 episodes x 200 "
        "steps). Load: the 1-minute load average when each case began (other jobs share the machine).",
        "",
        "| env | policy | backend | program | compile s | StableHLO chars | while loops | load |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['env']} | {r['policy']} | {r['backend']} | {r['program']} | {r['compile_s']:.1f} | "
            f"{r['chars']:,} | {r['whiles']} | {r['load']} |"
        )
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="halfcheetah_vel", choices=registry.NATIVE_META_ENVS)
    parser.add_argument("--policies", default="vanilla")
    parser.add_argument("--backends", default="native,mjx")
    args = parser.parse_args()
    jax.config.update("jax_enable_compilation_cache", False)
    stem = os.path.join(os.path.dirname(__file__), "results", f"{jax.devices()[0].platform}_maml_compile")
    rows = []
    for backend in args.backends.split(","):
        for policy in args.policies.split(","):
            rows += measure(args.env, policy, backend)
            write(rows, stem + ".md")
            with open(stem + ".json", "w") as f:
                json.dump(rows, f, indent=1)
    print(open(stem + ".md").read(), file=sys.stderr)


if __name__ == "__main__":
    main()
