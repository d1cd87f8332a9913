"""The benchmark suite: one process per case, warm-up and medians, JSON + Markdown results.

Run: python -m benchmarks.run --suite=quick     (about 3 minutes on a 2-core CPU)
     python -m benchmarks.run --suite=full      (about 20 minutes; adds every critic, TD3,
                                                 env batches and 5-seed training)
     python -m benchmarks.run --suite=gpu       (an accelerator: every critic, the updates beside
                                                 PyTorch on the same GPU at both precisions, MJX
                                                 batches of 1 to 4,096 envs, SAC on Ant, 1 and 5 seeds)
Writes benchmarks/results/<platform>_<suite>.json and .md (device, jax/jaxlib versions, date),
the gpu suite benchmarks/results/gpu_<device kind>.*; both files are rewritten after every case,
so an interrupted run keeps what it measured. ``--only=REGEX`` runs the cases whose spec matches,
``--dry_run`` lists them.
PyTorch rows need `pip install torch==2.13.0` (CPU build); without torch they are skipped.
"""

import argparse
import datetime
import importlib.util
import json
import os
import re
import statistics

import jax

from benchmarks import cases, process, timing
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
    if suite == "gpu":
        return gpu_cases(torch)
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


def gpu_cases(torch: bool) -> list[dict]:
    """The accelerator suite. Precision: jax's default lets f32 matmuls run as TF32 on NVIDIA GPUs,
    PyTorch's (and the authors') does not, so the SA-Hyper SAC update is also timed with both
    frameworks at the same precision (torch with TF32; jax at 'highest')."""
    specs = [{"case": "matmul", "n": 8192}, {"case": "matmul", "n": 8192, "precision": "highest"}]
    specs.append({"case": "update_floor", "algo": "sac", "critic": "sa_hyper"})
    updates = [("sac", "sa_hyper", {}), ("sac", "sa_hyper", {"tf32": True})]
    updates += [("sac", "sa_hyper", {"precision": "highest"}), ("sac", "mlp", {})]
    updates += [("td3", "sa_hyper", {}), ("td3", "mlp", {})]
    for algo, critic, precision in updates:
        if torch:
            specs.append({"case": "update_side_by_side", "algo": algo, "critic": critic, "rounds": 9, "inner": 20})
            specs[-1].update(precision)
        elif "tf32" not in precision:
            specs.append({"case": "update_jax", "algo": algo, "critic": critic, "repeats": 9, "inner": 20})
            specs[-1].update(precision)
    for dtype in ("float32", "bfloat16"):  # mixed precision of the hypernetwork critic
        specs.append({"case": "update_jax", "algo": "sac", "critic": "sa_hyper", "repeats": 9, "inner": 20})
        specs[-1]["compute_dtype"] = dtype
    for critic, seeds in (("sa_hyper", 1), ("sa_hyper", 5), ("mlp", 1), ("mlp", 5)):
        specs.append({"case": "train", "env": "ant", "critic": critic, "seeds": seeds, "chunk": 1000})
    specs += [{"case": "env_steps", "env": "ant", "backend": "mjx", "num_envs": n} for n in (1, 16, 256, 1024, 4096)]
    specs += [{"case": "critic_fwd_bwd", "critic": c} for c in ("sa_hyper", "as_hyper", "mlp", "mlp_large")]
    return specs


def run_side_by_side(spec: dict) -> list[dict]:
    """Times the hyperjax and PyTorch updates in alternation: two live worker processes
    (``process.Worker``, one per framework, each stopped while the other is timed), an untimed block
    each, then ``rounds`` timed blocks of ``inner`` updates each (``timing.alternate``: the order
    flipped every round), so that both see the same drift of a shared machine.

    Returns the ``update_jax`` and ``update_torch`` rows, each with its median ms; the jax row
    also holds ``speedup``, the median over rounds of torch ms / jax ms, and its range. A worker
    that fails gives one row with its ``error``.
    """
    algo, critic, rounds = spec["algo"], spec["critic"], spec["rounds"]
    inner = cases.whole_cycles(algo, spec["inner"])
    options = {"update_jax": {"precision": spec.get("precision")}, "update_torch": {"tf32": spec.get("tf32", False)}}
    workers = {}
    try:
        for name in cases.CALLS:  # one at a time, so neither compiles beside the other's timing
            workers[name] = process.Worker({"case": name, "algo": algo, "critic": critic, **options[name]})
        timers = {name: worker.timer(inner) for name, worker in workers.items()}
        times = timing.alternate(timers, rounds, warmup=1)
    except (RuntimeError, BrokenPipeError) as e:
        return [{**spec, "error": str(e)}]
    finally:
        for worker in workers.values():
            worker.close()
    ratios = timing.paired_ratios(times["update_jax"], times["update_torch"])
    common = {"algo": algo, "critic": critic, "rounds": rounds, "inner": inner}
    rows = [
        {"case": name, **workers[name].info, **common, "ms": _ms(times[name]), "round_ms": _round_ms(times[name])}
        for name in cases.CALLS
    ]
    rows[0]["speedup"] = round(statistics.median(ratios), 2)
    rows[0]["speedup_range"] = [round(ratios[0], 2), round(ratios[-1], 2)]
    return rows


def _round_ms(seconds: list[float]) -> list[float]:
    """Each round's mean ms per update, in the order timed (rounds pair up across frameworks)."""
    return [round(1e3 * t, 4) for t in seconds]


def _ms(seconds: list[float]) -> float:
    return round(1e3 * statistics.median(seconds), 2)


def to_markdown(meta: dict, results: list[dict]) -> str:
    matmuls = [r for r in results if r["case"] == "matmul" and "gflops" in r]
    rate = matmuls[0]["gflops"] if matmuls else None
    lines = [f"# Benchmarks: {meta['suite']} suite on {meta['device']}", ""]
    lines += [f"jax {meta['jax']}, jaxlib {meta['jaxlib']}, {meta['date']}, {meta['machine']}", ""]
    if "note" in meta:
        lines += [meta["note"], ""]
    for r in matmuls:
        precision = r.get("precision", "default")
        size = r.get("n", 2048)
        lines += [f"Measured f32 matmul rate (jax, {size}^3, precision {precision}): **{r['gflops']} GFLOP/s**", ""]
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
        "Precision: jax's `default` lets f32 matmuls run as TF32 on NVIDIA GPUs (`highest`: full f32);",
        "torch `f32` is PyTorch's default and the authors' run, `tf32` allows TF32. On a CPU all are f32.",
        "",
        "| algo | critic | batch | precision (jax / torch) | hyperjax ms | torch ms | speed-up | analytic GFLOP "
        "| floor ms (at matmul rate) | hyperjax / floor | practical floor ms | hyperjax / practical |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for i, r in enumerate(results):
        if r["case"] != "update_jax" or "ms" not in r:
            continue
        # run_side_by_side returns each torch row right after its jax row
        following = results[i + 1] if i + 1 < len(results) else {}
        torch_row = following if following.get("case") == "update_torch" and "ms" in following else None
        precision = f"{r.get('precision', 'default')} / " + (
            ("tf32" if torch_row.get("tf32") else "f32") if torch_row else "n/a"
        )
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
            f"| {r['algo']} | {r['critic']} | {r['batch']} | {precision} | {r['ms']} | {torch_ms} | {ratio} "
            f"| {r['analytic_gflop']} "
            f"| {floor:.3g} | {r['ms'] / floor:.2f}x | {practical_cols} |"
        )
    for p in results:
        if p["case"] == "update_floor" and "floor_ms" in p:
            lines += [
                "",
                f"Practical floor of the {p['algo']} {p['critic']} update on this machine: its {p['dots']} matrix "
                f"multiplies ({p['gemm_gflop']} GFLOP), each timed alone at its own shapes, take {p['gemm_ms']} ms "
                f"in sum; the critic's Adam + Polyak step (memory-bound) takes {p['optimizer_ms']} ms.",
            ]
            if not meta["device"].startswith("cpu"):
                lines += [
                    "On an accelerator each multiply timed alone pays its own launch and synchronisation, so",
                    "this sum overstates what the fused update needs: read it as a CPU measure.",
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
        "memory: the training program's own (XLA's count); peak: the device allocator's peak over the case",
        "(accelerators only). Hours per 1M steps: every seed's 1M steps, at the measured rate.",
        "",
        "| env | physics | obs | critic | seeds | env steps/s | seed-steps/s | h per 1M steps | compile s "
        "| memory (MB) | peak (MB) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for r in results:
        if r["case"] == "train" and "env_steps_per_s" in r:
            lines.append(
                f"| {r['env']} | MJX in XLA | {r.get('obs', 27)} | {r['critic']} | {r['seeds']} "
                f"| {r['env_steps_per_s']} | {r['seed_steps_per_s']} | {1e6 / r['env_steps_per_s'] / 3600:.1f} "
                f"| {r['compile_s']} | {r['memory_mb']} | {r.get('peak_mb') or 'n/a'} |"
            )
        if r["case"] == "train_native" and "env_steps_per_s" in r:
            lines.append(
                f"| {r['env']} | native, host loop | {r['obs']} | {r['critic']} | {r['seeds']} "
                f"| {r['env_steps_per_s']} | {r['seed_steps_per_s']} | {1e6 / r['env_steps_per_s'] / 3600:.1f} "
                f"| {r['first_chunk_s']} (first chunk) |  |  |"
            )
    errors = [r for r in results if "error" in r]
    if errors:
        lines += ["", "## Cases that failed", ""] + [f"- `{json.dumps(r)}`" for r in errors]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", choices=("quick", "full", "gpu"), default="quick")
    parser.add_argument("--out", default=RESULTS)
    parser.add_argument("--only", default=None, help="run only the cases whose JSON spec matches this regex")
    parser.add_argument("--case_timeout", type=int, default=1800, help="seconds before a case is abandoned")
    parser.add_argument("--dry_run", action="store_true", help="list the cases and exit")
    args = parser.parse_args()
    torch = importlib.util.find_spec("torch") is not None
    specs = suite_cases(args.suite, torch)
    if args.only:
        specs = [s for s in specs if re.search(args.only, json.dumps(s))]
    if args.dry_run:
        for i, spec in enumerate(specs, 1):
            print(f"[{i}/{len(specs)}] {json.dumps(spec)}")
        return
    device, machine = jax.devices()[0], timing.machine()
    meta = {
        "suite": args.suite,
        "device": machine["device"],
        "jax": machine["jax"],
        "jaxlib": machine["jaxlib"],
        "date": datetime.date.today().isoformat(),
        "machine": f"{machine['cpu']}, {machine['cores']} cores",
        "analytic_sac_update_gflop_ant": round(flop_model.update_flops("sac", "sa_hyper", 27, 8, 256) / 1e9, 2),
    }
    if torch:
        import torch as torch_lib

        meta["torch"] = torch_lib.__version__
    os.makedirs(args.out, exist_ok=True)
    name = re.sub(r"[^a-z0-9]+", "_", device.device_kind.lower()).strip("_")
    stem = os.path.join(args.out, f"gpu_{name}" if args.suite == "gpu" else f"{device.platform}_{args.suite}")
    results = []
    for i, spec in enumerate(specs, 1):
        if spec["case"] == "update_side_by_side":
            new = run_side_by_side(spec)
        else:
            new = [process.run_case(spec, args.case_timeout)]
        results += new
        for result in new:
            print(f"[{i}/{len(specs)}] {json.dumps(result)}", flush=True)
        with open(stem + ".json", "w") as f:  # after every case: an interrupted run keeps its rows
            json.dump({"meta": meta, "results": results}, f, indent=1)
        with open(stem + ".md", "w") as f:
            f.write(to_markdown(meta, results))
    print(f"wrote {stem}.json and {stem}.md")


if __name__ == "__main__":
    main()
