"""One MAML-TRPO iteration at the paper's size, split into its phases, per policy.

Run: python -m benchmarks.maml_speed --env=halfcheetah_vel --policies=vanilla,context,hyper
Writes benchmarks/results/<device>_maml.{json,md}.

Phases (each a jitted program, timed on its second call, after compilation):
  raw stepping   ``meta_batch x fast_batch`` envs stepped ``T`` steps with fixed actions (the floor
                 of the rollouts; once per env);
  rollouts       one rollout of every task's episodes with the policy (pre-adaptation): sampling
                 from the policy and the per-task weights included;
  collect        pre rollouts -> baselines and advantages -> the inner step -> post rollouts;
  meta-step      the TRPO step on the collected batch (CG on Fisher-vector products, line search).
An iteration is collect + meta-step (what the trainer's program runs). Adaptation is reported as
collect - 2 x rollouts.

``--backend=native`` (the meta task on MuJoCo's C engine, ``agents/maml_host.py``): whole iterations
(``NativeMAML.iteration``), the first one (compiling its programs) timed apart, then ``--repeats``
iterations split by ``NativeMAML.timings``: env stepping (host, ``--threads`` threads), policy calls
(one jitted call per env step for all envs, transfers included), start (tasks, weights, start states,
noise), adaptation (advantages, inner step, next plan) and TRPO (post processing and the meta-step).
Writes benchmarks/results/<platform>_maml_native.{json,md}; each row names the load (``uptime``).
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from hyperjax.agents import maml, maml_host
from hyperjax.envs import registry


def _timed(fn, *args, repeats: int) -> tuple[float, float]:
    """``(compile_and_first_call_s, median_s)``."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return first, float(np.median(times))


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def measure_raw(env_name: str, envs: int, repeats: int) -> tuple[float, float]:
    """``(compile_s, s)`` of stepping ``envs`` envs for an episode with fixed actions."""
    env, _ = registry.EnvSpec(env_name).make_meta()

    @jax.jit
    def raw(key):
        states = jax.vmap(env.reset)(jax.random.split(key, envs))
        action = jnp.zeros((envs, env.action_size))
        final, _ = jax.lax.scan(lambda s, _: (jax.vmap(env.step)(s, action), None), states, None, env.episode_length)
        return final.reward

    return _timed(raw, jax.random.key(1), repeats=repeats)


def measure(
    env_name: str, policy: str, meta_batch: int, fast_batch: int, first_order: bool, repeats: int, skip_rollouts=False
) -> dict:
    config = maml.MAMLConfig(policy=policy, meta_batch=meta_batch, fast_batch=fast_batch, second_order=not first_order)
    env, family = registry.EnvSpec(env_name).make_meta()
    fns = maml.make_functions(config, env, family)
    state = jax.jit(fns.init)(jax.random.key(0))
    length, envs = env.episode_length, meta_batch * fast_batch
    tasks = state.train_tasks[:meta_batch]

    @jax.jit
    def rollouts(params, key):
        return fns.returns(params, tasks, state.train_tasks, key, fast_batch)

    collect = jax.jit(fns.collect)
    meta_step = jax.jit(fns.meta_step)
    key = jax.random.key(1)
    out = dict(env=env_name, policy=policy, meta_batch=meta_batch, fast_batch=fast_batch, steps=length)
    out["first_order"] = first_order
    out["rollouts_compile_s"] = out["rollouts_s"] = float("nan")
    if not skip_rollouts:
        _log(f"{policy}: rollouts")
        out["rollouts_compile_s"], out["rollouts_s"] = _timed(rollouts, state.params, key, repeats=repeats)
    _log(f"{policy}: collect")
    out["collect_compile_s"], out["collect_s"] = _timed(collect, state.params, state.train_tasks, key, repeats=repeats)
    batch = collect(state.params, state.train_tasks, key)
    _log(f"{policy}: meta-step")
    out["meta_step_compile_s"], out["meta_step_s"] = _timed(meta_step, state.params, batch, repeats=repeats)
    out["iteration_s"] = out["collect_s"] + out["meta_step_s"]
    out["compile_s"] = out["collect_compile_s"] + out["meta_step_compile_s"] - out["iteration_s"]
    out["adaptation_s"] = out["collect_s"] - 2 * out["rollouts_s"]
    out["rollout_steps_per_s"] = envs * length / out["rollouts_s"]
    out["hours_for_400"] = 400 * out["iteration_s"] / 3600
    return out


def _load() -> str:
    """The 1-minute load average (other jobs share the machine)."""
    return f"{os.getloadavg()[0]:.1f}"


def measure_native(
    env_name: str, policy: str, meta_batch: int, fast_batch: int, first_order: bool, repeats: int, threads: int
) -> dict:
    """One native-path case: the first iteration (compiles) and the median of ``repeats`` more, by phase."""
    config = maml.MAMLConfig(policy=policy, meta_batch=meta_batch, fast_batch=fast_batch, second_order=not first_order)
    spec = registry.EnvSpec(env_name, backend="native")
    native = maml_host.NativeMAML(config, spec, num_seeds=1, eval_episodes=1, threads=threads)
    init, _ = native.layout.init(native.init_one)
    state = init(jax.random.key(0)[None])
    out = dict(backend="native", env=env_name, policy=policy, meta_batch=meta_batch, fast_batch=fast_batch)
    out.update(steps=native.train_env.episode_length, first_order=first_order, threads=native.train_env.threads)
    out["load_before"] = _load()
    _log(f"native {policy}: first iteration (compiles)")
    t0 = time.perf_counter()
    state, _ = jax.block_until_ready(native.iteration(state))
    out["first_iteration_s"] = time.perf_counter() - t0
    out["first_phases_s"] = dict(native.timings)
    rows = []
    for i in range(repeats):
        native.timings = dict.fromkeys(native.timings, 0.0)
        t0 = time.perf_counter()
        state, _ = jax.block_until_ready(native.iteration(state))
        rows.append({"iteration": time.perf_counter() - t0, **native.timings})
        _log(f"native {policy}: iteration {i + 1}: {rows[-1]['iteration']:.1f} s")
    median = {k: float(np.median([r[k] for r in rows])) for k in rows[0]}
    out.update({f"{k}_s": v for k, v in median.items()})
    out["iteration_s"] = median["iteration"]
    out["compile_s"] = out["first_iteration_s"] - out["iteration_s"]
    out["env_steps_per_s"] = 2 * meta_batch * fast_batch * out["steps"] / median["env"]
    out["hours_for_400"] = 400 * out["iteration_s"] / 3600
    out["load_after"] = _load()
    native.close()
    return out


def write_native(rows: list[dict], path: str) -> None:
    lines = [
        f"# MAML-TRPO iteration at paper size, native path (MuJoCo's C engine on the host): {_cpu()}",
        "",
        f"jax {jax.__version__}, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores; 1-minute load average "
        "before / after each case in the table (other jobs share the machine). Command: `python -m "
        "benchmarks.maml_speed --backend=native` (phases: its docstring). One iteration = "
        f"{rows[0]['meta_batch']} tasks x {rows[0]['fast_batch']} episodes x {rows[0]['steps']} steps, before and "
        "after adaptation; medians of the repeats after the first iteration.",
        "",
        "| env | policy | order | threads | iteration s | env stepping s (steps/s) | policy calls s | start s | "
        "adaptation s | TRPO s | first iteration s (compile s) | 400 iterations h | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        order = "first" if r["first_order"] else "second"
        lines.append(
            f"| {r['env']} | {r['policy']} | {order} | {r['threads']} | {r['iteration_s']:.1f} | "
            f"{r['env_s']:.1f} ({r['env_steps_per_s']:,.0f}) | {r['policy_s']:.1f} | {r['start_s']:.2f} | "
            f"{r['adapt_s']:.2f} | {r['learn_s']:.2f} | {r['first_iteration_s']:.0f} ({r['compile_s']:.0f}) | "
            f"{r['hours_for_400']:.1f} | {r['load_before']} / {r['load_after']} |"
        )
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def _cpu() -> str:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return platform.processor()
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if "Model name" in line), "?")
    return f"{model}, {'AVX-512' if 'avx512f' in text else 'no AVX-512'}"


def write(rows: list[dict], path: str) -> None:
    device = jax.devices()[0]
    what = _cpu() if device.platform == "cpu" else device.device_kind
    lines = [
        f"# MAML-TRPO iteration at paper size on {device.platform}: {what}",
        "",
        f"jax {jax.__version__}, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores. "
        f"Command: `python -m benchmarks.maml_speed` (see its docstring for the phases). One iteration = "
        f"{rows[0]['meta_batch']} tasks x {rows[0]['fast_batch']} episodes x {rows[0]['steps']} steps, "
        "before and after adaptation.",
        "",
        "| env | policy | order | raw stepping s (steps/s) | rollouts s (steps/s) | rollouts / raw | "
        "adaptation s | TRPO s | iteration s | 400 iterations h | compile s (collect + meta-step) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        order = "first" if r["first_order"] else "second"
        lines.append(
            f"| {r['env']} | {r['policy']} | {order} | {r['raw_s']:.2f} ({r['raw_steps_per_s']:,.0f}) | "
            f"{r['rollouts_s']:.2f} ({r['rollout_steps_per_s']:,.0f}) | {r['rollouts_over_raw']:.2f}x | "
            f"{r['adaptation_s']:.2f} | {r['meta_step_s']:.2f} | {r['iteration_s']:.2f} | {r['hours_for_400']:.1f} | "
            f"{r['compile_s']:.0f} |"
        )
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="halfcheetah_vel", choices=registry.META_ENVS)
    parser.add_argument("--policies", default=",".join(maml.POLICIES))
    parser.add_argument("--meta_batch", type=int, default=40)
    parser.add_argument("--fast_batch", type=int, default=20)
    parser.add_argument("--first_order", action="store_true", help="the paper preset (else second order)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--skip_raw", action="store_true", help="no raw-stepping measurement (saves minutes on a CPU)")
    parser.add_argument("--skip_rollouts", action="store_true", help="no separate rollout phase (no split)")
    parser.add_argument("--append", action="store_true", help="add the rows to the existing results file")
    parser.add_argument("--out", default=None, help="results file stem; default benchmarks/results/<platform>_maml")
    parser.add_argument("--backend", default="mjx", choices=("mjx", "native"), help="native: MuJoCo's C engine")
    parser.add_argument("--threads", type=int, default=None, help="native: host threads (default: the cores)")
    args = parser.parse_args()
    suffix = "_maml_native" if args.backend == "native" else "_maml"
    stem = args.out or os.path.join(os.path.dirname(__file__), "results", f"{jax.devices()[0].platform}{suffix}")
    rows = []
    if args.append and os.path.exists(stem + ".json"):
        with open(stem + ".json") as f:
            rows = json.load(f)
    if args.backend == "native":
        for policy in args.policies.split(","):
            rows.append(
                measure_native(
                    args.env, policy, args.meta_batch, args.fast_batch, args.first_order, args.repeats, args.threads
                )
            )
            print(json.dumps(rows[-1]), flush=True)
            with open(stem + ".json", "w") as f:
                json.dump(rows, f, indent=1)
            write_native(rows, stem + ".md")
        print(open(stem + ".md").read())
        return
    raw_compile_s, raw_s = float("nan"), float("nan")
    if not args.skip_raw:
        _log("raw stepping")
        raw_compile_s, raw_s = measure_raw(args.env, args.meta_batch * args.fast_batch, args.repeats)
    for policy in args.policies.split(","):
        row = measure(
            args.env, policy, args.meta_batch, args.fast_batch, args.first_order, args.repeats, args.skip_rollouts
        )
        row.update(raw_compile_s=raw_compile_s, raw_s=raw_s, rollouts_over_raw=row["rollouts_s"] / raw_s)
        row["raw_steps_per_s"] = row["meta_batch"] * row["fast_batch"] * row["steps"] / raw_s
        rows.append(row)
        print(json.dumps(rows[-1]), flush=True)
        with open(stem + ".json", "w") as f:
            json.dump(rows, f, indent=1)
        write(rows, stem + ".md")
    print(open(stem + ".md").read())


if __name__ == "__main__":
    main()
