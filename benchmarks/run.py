"""The benchmark suite: one process per case, warm-up and medians, JSON + Markdown results.

Run: python -m benchmarks.run --suite=quick     (about 3 minutes on a 2-core CPU)
     python -m benchmarks.run --suite=full      (about 20 minutes; adds every critic, TD3,
                                                 env batches and 5-seed training)
Writes benchmarks/results/<device>_<suite>.json and .md (device, jax/jaxlib versions, date).
PyTorch rows need `pip install torch==2.13.0` (CPU build); without torch they are skipped.
"""

import argparse
import datetime
import importlib.util
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile

import jax
import jaxlib

from benchmarks import cases
from benchmarks import flops as flop_model
from hyperjax.nn import critics

RESULTS = os.path.join(os.path.dirname(__file__), "results")


def suite_cases(suite: str, torch: bool) -> list[dict]:
    updates = [("sac", "sa_hyper"), ("sac", "mlp")]
    critic_names = ["sa_hyper", "mlp"]
    env_batches = [("ant", "mjx", 1), ("ant", "mjx", 16)]
    trains = [("ant", "mlp", 1, 100)]
    native_envs = [("Ant-v5", 1)]
    native_trains = [("Ant-v5", "mlp", 1, 300, True), ("Ant-v5", "mlp", 1, 300, False)]
    if suite == "full":
        updates += [("td3", "sa_hyper"), ("td3", "mlp")]
        critic_names = list(critics.CRITICS)
        backends = ("mjx", "generalized", "positional", "spring")
        env_batches = [(e, b, n) for e in ("ant", "halfcheetah") for b in backends for n in (1, 16, 256)]
        trains += [("ant", "mlp", 5, 100), ("ant", "sa_hyper", 1, 10), ("ant", "sa_hyper", 5, 5)]
        native_envs += [("Ant-v5", 16), ("HalfCheetah-v5", 1), ("Hopper-v5", 1), ("Walker2d-v5", 1)]
        native_trains += [("Ant-v5", "mlp", 5, 100, False), ("Ant-v5", "sa_hyper", 1, 10, False)]
        native_trains += [("Ant-v5", "sa_hyper", 5, 5, False)]
    specs = [{"case": "matmul"}]
    specs += [{"case": "critic_fwd_bwd", "critic": c} for c in critic_names]
    specs.append({"case": "update_floor", "algo": "sac", "critic": "sa_hyper"})
    for algo, critic in updates:
        # a few-ms update needs many calls per timed block for a stable median
        reps = {"rounds": 7, "inner": 4} if critic in critics.HYPER_CRITICS else {"rounds": 15, "inner": 30}
        if torch:
            specs.append({"case": "update_side_by_side", "algo": algo, "critic": critic, **reps})
        else:
            timing = {"repeats": reps["rounds"], "inner": reps["inner"]}
            specs.append({"case": "update_jax", "algo": algo, "critic": critic, **timing})
    specs += [{"case": "env_steps", "env": e, "backend": b, "num_envs": n} for e, b, n in env_batches]
    specs += [{"case": "native_mujoco", "env": e} for e in sorted({e for e, _, _ in env_batches})]
    specs += [{"case": "gymnasium_steps", "env": e, "num_envs": n} for e, n in native_envs]
    specs += [{"case": "train", "env": e, "critic": c, "seeds": s, "chunk": k} for e, c, s, k in trains]
    specs += [
        {"case": "train_native", "env": e, "critic": c, "seeds": s, "chunk": k, "contact_obs": o}
        for e, c, s, k, o in native_trains
    ]
    return specs


def run_side_by_side(spec: dict) -> list[dict]:
    """Times the hyperjax and PyTorch updates in alternation: two live worker processes (one per
    framework; the one not being timed is stopped with SIGSTOP, so its idle thread pools can't spin
    beside the other), ``rounds`` timed blocks of ``inner`` updates each, the order flipped every
    round, so that both see the same drift of a shared machine.

    Returns the ``update_jax`` and ``update_torch`` rows, each with its median ms; the jax row
    also holds ``speedup``, the median over rounds of torch ms / jax ms, and its range. A worker
    that fails gives one row with its ``error``.
    """
    algo, critic, rounds = spec["algo"], spec["critic"], spec["rounds"]
    inner = cases.whole_cycles(algo, spec["inner"])
    workers, logs, times = {}, {}, {}

    def error(name: str) -> str:
        logs[name].seek(0)
        return f"{name} worker: " + (logs[name].read().strip().splitlines() or ["exited"])[-1]

    def block(name: str) -> float:
        proc = workers[name]
        os.kill(proc.pid, signal.SIGCONT)
        proc.stdin.write(f"{inner}\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        os.kill(proc.pid, signal.SIGSTOP)
        if not line:
            raise RuntimeError(error(name))
        return float(line)

    try:
        for name in cases.UPDATES:  # one at a time, so neither compiles beside the other's timing
            logs[name] = tempfile.TemporaryFile("w+")
            worker_spec = json.dumps({"case": name, "algo": algo, "critic": critic})
            workers[name] = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.cases", "--serve", worker_spec],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=logs[name],
                text=True,
            )
            ready = next((x for x in workers[name].stdout if x.startswith("READY ")), None)
            if ready is None:
                raise RuntimeError(error(name))
            os.kill(workers[name].pid, signal.SIGSTOP)
            times[name] = ([], json.loads(ready[len("READY ") :]))
        for name in workers:  # an untimed warm-up block each
            block(name)
        for i in range(rounds):
            for name in list(workers)[:: 1 if i % 2 == 0 else -1]:
                times[name][0].append(block(name))
    except (RuntimeError, BrokenPipeError) as e:
        return [{**spec, "error": str(e)}]
    finally:
        for proc in workers.values():
            proc.kill()  # SIGKILL ends a stopped process too
    (jax_t, jax_info), (torch_t, torch_info) = times["update_jax"], times["update_torch"]
    ratios = sorted(t / j for t, j in zip(torch_t, jax_t))
    common = {"algo": algo, "critic": critic, "rounds": rounds, "inner": inner}
    jax_row = {"case": "update_jax", **jax_info, **common, "ms": _ms(jax_t), "round_ms": _round_ms(jax_t)}
    jax_row["speedup"] = round(statistics.median(ratios), 2)
    jax_row["speedup_range"] = [round(ratios[0], 2), round(ratios[-1], 2)]
    torch_row = {"case": "update_torch", **torch_info, **common, "ms": _ms(torch_t), "round_ms": _round_ms(torch_t)}
    return [jax_row, torch_row]


def _round_ms(seconds: list[float]) -> list[float]:
    """Each round's mean ms per update, in the order timed (rounds pair up across frameworks)."""
    return [round(1e3 * t, 4) for t in seconds]


def _ms(seconds: list[float]) -> float:
    return round(1e3 * statistics.median(seconds), 2)


def run_case(spec: dict, timeout: int = 1800) -> dict:
    """Runs one case in a fresh Python process (no shared compile caches or allocations)."""
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.cases", json.dumps(spec)], capture_output=True, text=True, timeout=timeout
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return {**spec, **json.loads(line[len("RESULT ") :])}
    return {**spec, "error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}


def to_markdown(meta: dict, results: list[dict]) -> str:
    rate = next((r["gflops"] for r in results if r["case"] == "matmul" and "gflops" in r), None)
    lines = [f"# Benchmarks: {meta['suite']} suite on {meta['device']}", ""]
    lines += [f"jax {meta['jax']}, jaxlib {meta['jaxlib']}, {meta['date']}, {meta['machine']}", ""]
    lines += [f"Measured f32 matmul rate (jax, 2048^3): **{rate} GFLOP/s**", ""]
    lines += ["## Critic forward + backward at paper size (batch 256, Ant dims 27/8, twin)", ""]
    lines += ["| critic | params | ms | XLA GFLOP | GFLOP/s | memory (MB) |", "|---|---|---|---|---|---|"]
    for r in results:
        if r["case"] == "critic_fwd_bwd" and "ms" in r:
            achieved = r["xla_gflop"] / r["ms"] * 1e3
            row = [r["critic"], f"{r['params']:,}", r["ms"], r["xla_gflop"], f"{achieved:.0f}", r["memory_mb"]]
            lines.append("| " + " | ".join(map(str, row)) + " |")
    lines += ["", "## One full update at paper size: hyperjax against the authors' PyTorch structure", ""]
    lines += [
        "Side by side: both updates live in two worker processes and are timed in alternation (blocks of",
        "updates, order flipped every round); ms are medians over rounds, the speed-up is the median of the",
        "rounds' torch / hyperjax ratios (range in brackets).",
        "",
    ]
    lines += [
        "| algo | critic | batch | hyperjax ms | torch ms | speed-up | analytic GFLOP | floor ms (at matmul rate) "
        "| hyperjax / floor | practical floor ms | hyperjax / practical |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for r in results:
        if r["case"] != "update_jax" or "ms" not in r:
            continue
        torch_row = next(
            (
                t
                for t in results
                if t["case"] == "update_torch" and (t["algo"], t["critic"]) == (r["algo"], r["critic"])
            ),
            None,
        )
        torch_row = torch_row if torch_row and "ms" in torch_row else None
        torch_ms = torch_row["ms"] if torch_row else "n/a"
        if "speedup" in r:  # median of the rounds' ratios, timed in alternation
            ratio = f"{r['speedup']:.2f}x ({r['speedup_range'][0]}-{r['speedup_range'][1]})"
        else:
            ratio = f"{torch_row['ms'] / r['ms']:.2f}x" if torch_row else "n/a"
        floor = r["analytic_gflop"] / rate * 1e3 if rate else float("nan")
        practical = next(
            (
                p
                for p in results
                if p["case"] == "update_floor"
                and "floor_ms" in p
                and (p["algo"], p["critic"]) == (r["algo"], r["critic"])
            ),
            None,
        )
        practical_cols = (
            f"{practical['floor_ms']} | {r['ms'] / practical['floor_ms']:.2f}x" if practical else "n/a | n/a"
        )
        lines.append(
            f"| {r['algo']} | {r['critic']} | {r['batch']} | {r['ms']} | {torch_ms} | {ratio} | {r['analytic_gflop']} "
            f"| {floor:.1f} | {r['ms'] / floor:.2f}x | {practical_cols} |"
        )
    for p in results:
        if p["case"] == "update_floor" and "floor_ms" in p:
            lines += [
                "",
                f"Practical floor of the {p['algo']} {p['critic']} update on this machine: its {p['dots']} matrix "
                f"multiplies ({p['gemm_gflop']} GFLOP), each timed alone at its own shapes, take {p['gemm_ms']} ms "
                f"in sum; the critic's Adam + Polyak step (memory-bound) takes {p['optimizer_ms']} ms.",
            ]
    lines += ["", "## Environment steps/s (Brax: jitted scan of 200 steps, vmapped batch; native: host loop)", ""]
    lines += ["| env | backend | envs | steps/s | compile s |", "|---|---|---|---|---|"]
    for r in results:
        if r["case"] in ("env_steps", "native_mujoco", "gymnasium_steps") and "steps_per_s" in r:
            lines.append(
                f"| {r['env']} | {r['backend']} | {r['num_envs']} | {r['steps_per_s']:,} | {r.get('compile_s', '')} |"
            )
    lines += ["", "## End-to-end SAC training (env step + update per step), seeds in one program", ""]
    lines += [
        "Brax/MJX: the whole chunk is one XLA program. Native: MuJoCo's C engine via Gymnasium on the host,",
        "one jitted act+update call per step. obs: observation dims (Ant-v5 with contact forces 105,",
        "without them 27, as Brax's Ant; the paper preset's MJX Ant: 111, as the authors').",
        "",
        "| env | physics | obs | critic | seeds | env steps/s | seed-steps/s | compile s | memory (MB) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if r["case"] == "train" and "env_steps_per_s" in r:
            lines.append(
                f"| {r['env']} | MJX in XLA | {r.get('obs', 27)} | {r['critic']} | {r['seeds']} "
                f"| {r['env_steps_per_s']} | {r['seed_steps_per_s']} | {r['compile_s']} | {r['memory_mb']} |"
            )
        if r["case"] == "train_native" and "env_steps_per_s" in r:
            lines.append(
                f"| {r['env']} | native, host loop | {r['obs']} | {r['critic']} | {r['seeds']} "
                f"| {r['env_steps_per_s']} | {r['seed_steps_per_s']} | {r['first_chunk_s']} (first chunk) |  |"
            )
    errors = [r for r in results if "error" in r]
    if errors:
        lines += ["", "## Cases that failed", ""] + [f"- `{json.dumps(r)}`" for r in errors]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--suite", choices=("quick", "full"), default="quick")
    parser.add_argument("--out", default=RESULTS)
    args = parser.parse_args()
    torch = importlib.util.find_spec("torch") is not None
    device = jax.devices()[0]
    meta = {
        "suite": args.suite,
        "device": f"{device.platform}:{device.device_kind}",
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "analytic_sac_update_gflop_ant": round(flop_model.update_flops("sac", "sa_hyper", 27, 8, 256) / 1e9, 2),
    }
    specs = suite_cases(args.suite, torch)
    results = []
    for i, spec in enumerate(specs, 1):
        new = run_side_by_side(spec) if spec["case"] == "update_side_by_side" else [run_case(spec)]
        results += new
        for result in new:
            print(f"[{i}/{len(specs)}] {json.dumps(result)}", flush=True)
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, f"{device.platform}_{args.suite}")
    with open(stem + ".json", "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=1)
    with open(stem + ".md", "w") as f:
        f.write(to_markdown(meta, results))
    print(f"wrote {stem}.json and {stem}.md")


if __name__ == "__main__":
    main()
