"""One PEARL iteration at the paper's size, split into its phases, per model.

Run: python -m benchmarks.pearl_speed --env=halfcheetah_vel --models=mlp,hyper
Writes benchmarks/results/<device>_pearl.{json,md}. With ``--backends=native`` (or ``mjx,native``) the
collection also runs on MuJoCo's C engine (``agents/pearl_host.py``): ``native_collect`` is an
iteration's collection (its plan programs, the host env steps and the per-step policy calls; the
buffers are written in the gradient steps' program), its first call (compiling its programs) timed
apart as ``native_collect_compile_s``, and the split into env stepping and policy calls.

Phases (each a jitted program, compiled ahead of time, then timed):
  initial      the first iteration's extra collection: ``num_initial_steps`` on every training task;
  collect      one iteration's collection: ``num_tasks_sample`` tasks x (prior + posterior) steps;
  gradient     ``--grad_steps`` gradient steps as one scan (the trainer's), per step; an iteration
               runs ``num_train_steps`` (2,000) of them;
  evaluate     one evaluation: the test tasks and as many training tasks, ``num_steps_per_eval`` each.
The gradient step is compared with its FLOP floor: the analytic count (``benchmarks/flops.py``)
at the f32 matmul rate jax reaches on the device. An iteration is collect + 2,000 steps.
"""

import argparse
import dataclasses
import json
import os
import sys
import time

import jax
import jax.numpy as jnp

from benchmarks import cases, timing
from benchmarks import flops as flop_model
from hyperjax.agents import pearl, pearl_host
from hyperjax.envs import registry
from hyperjax.nn import pearl as pearl_nets
from hyperjax.train import trainer as trainer_lib


def _compile(fn, *args):
    return timing.aot(fn, *args)


def _time(compiled, *args, repeats: int = 1) -> float:
    return timing.median_time(lambda: compiled(*args), repeats)


def _filled(state: pearl.PEARLState) -> pearl.PEARLState:
    """Buffers full of random transitions (the gradient step's cost does not depend on the data)."""

    def fill(replay):
        leaves, treedef = jax.tree.flatten(replay.data)
        keys = jax.random.split(jax.random.key(7), len(leaves))
        data = jax.tree.unflatten(treedef, [jax.random.normal(k, x.shape, x.dtype) for k, x in zip(keys, leaves)])
        full = jnp.full_like(replay.size, replay.data.reward.shape[-1])
        return replay.replace(data=data, size=full)

    return state.replace(replay=fill(state.replay), context_replay=fill(state.context_replay))


def measure_native(config: pearl.PEARLConfig, env_name: str, state: pearl.PEARLState, capacity: int, out: dict) -> None:
    """``out`` gains the native collection's seconds (median of 3 after a first, compiling, call)."""
    spec = registry.EnvSpec(env_name, backend="native")
    native = pearl_host.NativePEARL(config, spec, 1, capacity)
    t0 = time.perf_counter()
    jax.block_until_ready(native.collect(state))
    first = time.perf_counter() - t0
    native.timings = dict.fromkeys(native.timings, 0.0)
    out["native_collect_s"] = timing.median_time(lambda: native.collect(state), 3)
    out["native_collect_compile_s"] = first - out["native_collect_s"]
    for name in ("env", "policy", "plan"):
        out[f"native_{name}_s"] = native.timings[name] / 3
    out["native_threads"] = max(env.threads for env in native.envs.values())
    native.close()


def measure(
    env_name: str, model: str, grad_steps: int, capacity: int, skip_initial: bool, skip_eval: bool, backends=("mjx",)
) -> dict:
    config = pearl.ALGORITHM.make_config("paper", env_name, model=model)
    spec = registry.EnvSpec(env_name)
    setting = trainer_lib.Setting(env=spec, num_seeds=1, eval_episodes=1, buffer_size=capacity)
    env, family = pearl.make_env(config, setting)
    fns = pearl.make_functions(config, env, family, capacity)
    state = jax.jit(fns.init)(jax.random.key(0))
    out = dict(env=env_name, model=model, capacity_per_task=capacity, grad_steps_timed=grad_steps)
    params = sum(int(x.size) for x in jax.tree.leaves(state.params))
    out["params"] = params
    if not skip_initial:
        timing.log(f"{model}: initial collection")
        initial, out["initial_compile_s"] = _compile(fns.initial_collection, state)
        out["initial_s"] = _time(initial, state)
        state = initial(state)
    else:
        state = jax.jit(_filled)(state)
    if "native" in backends:
        timing.log(f"{model}: collect on MuJoCo's C engine")
        measure_native(config, env_name, state, capacity, out)
    if "mjx" in backends:
        timing.log(f"{model}: collect on MJX")
        collect, out["collect_compile_s"] = _compile(fns.collect, state, jax.random.key(1))
        out["collect_s"] = _time(collect, state, jax.random.key(1), repeats=2)
    timing.log(f"{model}: gradient steps")
    steps_config = dataclasses.replace(config, num_train_steps=grad_steps)
    train = pearl.make_functions(steps_config, env, family, capacity).train
    compiled, out["train_compile_s"] = _compile(train, state, jax.random.key(2))
    out["grad_step_s"] = _time(compiled, state, jax.random.key(2), repeats=2) / grad_steps
    one = jax.jit(pearl.make_functions(dataclasses.replace(config, num_train_steps=1), env, family, capacity).train)
    xla = (one.lower(state, jax.random.key(2)).compile().cost_analysis() or {}).get("flops", float("nan"))
    out["xla_gflop"] = xla / 1e9
    out["analytic_gflop"] = flop_model.pearl_step_flops(model, env.observation_size, env.action_size) / 1e9
    if not skip_eval:
        timing.log(f"{model}: evaluate")
        runs = 1

        def evaluate(params, key):
            pool = pearl.context_pool(env_name, state.train_tasks, state.test_tasks)
            return fns.evaluate(params, state.test_tasks, pool, key, runs), fns.evaluate(
                params, state.train_tasks[: config.num_test_tasks], pool, key, runs
            )

        evaluation, out["evaluate_compile_s"] = _compile(evaluate, state.params, jax.random.key(3))
        out["evaluate_s"] = _time(evaluation, state.params, jax.random.key(3))
    collect_s = out.get("native_collect_s", out.get("collect_s"))
    out["iteration_s"] = collect_s + config.num_train_steps * out["grad_step_s"]
    out["hours_for_400"] = (400 * out["iteration_s"] + out.get("initial_s", 0.0)) / 3600
    return out


def write(rows: list[dict], rate: float, path: str) -> None:
    device = jax.devices()[0]
    what = timing.cpu_model() if device.platform == "cpu" else device.device_kind
    lines = [
        f"# PEARL iteration at paper size on {device.platform}: {what}",
        "",
        f"jax {jax.__version__}, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores. "
        "Command: `python -m benchmarks.pearl_speed` (its docstring lists the phases). Paper sizes: 100 training "
        "tasks, 5 sampled per iteration x (400 prior + 600 posterior steps), 2,000 gradient steps of 16 tasks x "
        "256 transitions (+ 100 context transitions per task); evaluation: 30 test + 30 training tasks x 600 "
        f"steps. Measured f32 matmul rate (jax, 2048^3): **{rate} GFLOP/s**; FLOP floor = analytic GFLOP / that "
        "rate.",
        "",
        "| env | model | params | initial collection s | collect s (MJX) | collect s (native: env + policy) | "
        "gradient step s | analytic GFLOP | XLA GFLOP | floor s | step / floor | iteration s | 400 iterations h | "
        "evaluation s | collect compile s (MJX / native) | gradient steps compile s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    nan = float("nan")
    for r in rows:
        floor = r["analytic_gflop"] / rate
        native = (
            f"{r['native_collect_s']:.2f} ({r['native_env_s']:.2f} + {r['native_policy_s']:.2f})"
            if "native_collect_s" in r
            else "-"
        )
        lines.append(
            f"| {r['env']} | {r['model']} | {r['params']:,} | {r.get('initial_s', nan):.1f} | "
            f"{r.get('collect_s', nan):.2f} | {native} | {r['grad_step_s']:.3f} | {r['analytic_gflop']:.1f} | "
            f"{r['xla_gflop']:.1f} | {floor:.3f} | {r['grad_step_s'] / floor:.2f}x | {r['iteration_s']:.0f} | "
            f"{r['hours_for_400']:.1f} | {r.get('evaluate_s', nan):.1f} | "
            f"{r.get('collect_compile_s', nan):.0f} / {r.get('native_collect_compile_s', nan):.0f} | "
            f"{r['train_compile_s']:.0f} |"
        )
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="halfcheetah_vel", choices=registry.META_ENVS)
    parser.add_argument("--models", default=",".join(pearl_nets.MODELS))
    parser.add_argument("--grad_steps", type=int, default=20, help="gradient steps timed (CPU: a few)")
    parser.add_argument("--capacity", type=int, default=5000, help="RL buffer per task (the step cost ignores it)")
    parser.add_argument("--skip_initial", action="store_true", help="random buffers instead of the initial collection")
    parser.add_argument("--skip_eval", action="store_true")
    parser.add_argument("--backends", default="mjx", help="the collection's: mjx, native or mjx,native")
    parser.add_argument("--out", default=None, help="results file stem; default benchmarks/results/<platform>_pearl")
    args = parser.parse_args()
    stem = args.out or os.path.join(os.path.dirname(__file__), "results", f"{jax.devices()[0].platform}_pearl")
    models = args.models.split(",")
    for model in models:
        if model not in pearl_nets.MODELS:
            sys.exit(f"unknown model {model!r}; valid: {', '.join(pearl_nets.MODELS)}")
    backends = tuple(args.backends.split(","))
    if not backends or any(b not in ("mjx", "native") for b in backends):
        sys.exit(f"unknown --backends {args.backends!r}; valid: mjx, native or mjx,native")
    rate = cases.matmul()["gflops"]
    rows = []
    for model in models:
        rows.append(
            measure(args.env, model, args.grad_steps, args.capacity, args.skip_initial, args.skip_eval, backends)
        )
        print(json.dumps(rows[-1]), flush=True)
        with open(stem + ".json", "w") as f:
            json.dump({"matmul_gflops": rate, "rows": rows}, f, indent=1)
        write(rows, rate, stem + ".md")
    print(open(stem + ".md").read())


if __name__ == "__main__":
    main()
