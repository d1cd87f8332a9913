"""The off-policy loop's throughput mode on this machine: env steps/s, and learning per env step.

Run: python -m benchmarks.throughput [--part=speed|learning|all]
-> benchmarks/results/cpu_throughput.{json,md} (a part run alone replaces only its own section)

``num_envs`` environments per seed step together (one iteration = ``num_envs`` env steps) and each
iteration makes ``updates_per_step`` gradient steps (one replay sample, split and scanned); the replay
ratio is ``updates_per_step / num_envs`` gradient steps per env step; (1, 1) is the paper's protocol.

speed: the training program alone (no evaluation), one seed, SAC on MJX Hopper with the paper-size
  SA-Hyper critic and with the paper-size MLP critic, each trainer built through the algorithm registry
  (as a run builds it). Per config: build + init, then the first call (compile + one iteration), then a
  sizing call; then ``rounds`` rounds that time one chunk (about ``--chunk_seconds``) of every config of
  that critic, the order reversed every round, so a changing machine load hits them alike. Every timed
  iteration updates (the chunks start past ``update_after``; ``start_steps=0``). Reported: the median
  over rounds of env steps/s and gradient steps/s, and the median of the per-round ratio to (1, 1).
learning: ``runner.run`` (the whole run: compile, training, evaluations) of SAC with a small MLP critic
  on the pure-JAX pendulum, 2 seeds: the evaluation returns (mean over seeds) against env steps, the
  training env steps/s per seed (the runner's measure, compile excluded) and the wall time. These runs
  follow one another, so their speeds saw different loads; the speed part is the comparison.

Load: the share of the machine's cores busy during each part, split into this process and the rest
(``/proc/stat``), and the busiest other processes at the part's start.
"""

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks import timing
from hyperjax.experiments import quiet

with quiet.imports():  # mujoco-mjx's "Failed to import warp" lines
    import jax
    import numpy as np

    from hyperjax.agents import registry
    from hyperjax.experiments import runner
    from hyperjax.train import logger

RESULTS = os.path.join(os.path.dirname(__file__), "results", "cpu_throughput")
SPEED_GRID = "1x1,4x1,4x4,16x1,16x4,64x1"
# fewer for SA-Hyper: each config is its own program, and build + compile take minutes on 2 cores,
# while its update (~0.2-0.8 s) dominates an iteration, so env steps/s follow num_envs / updates_per_step
HYPER_GRID = "1x1,4x4,16x1"
LEARNING_GRID = "1x1,4x4,4x1,16x16,16x4"


def _grid(text: str) -> list[tuple[int, int]]:
    """``"1x1,4x4"`` -> ``[(1, 1), (4, 4)]`` (num_envs x updates_per_step)."""
    return [tuple(int(v) for v in item.split("x")) for item in text.split(",") if item]


def _label(num_envs: int, updates: int) -> str:
    return f"{num_envs}x{updates}"


# ---------------------------------------------------------------------------------------------- machine and load


def _cpu_jiffies() -> tuple[int, int]:
    """``(busy, total)`` jiffies of all cores since boot (``/proc/stat``)."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def _other_processes(limit: int = 6) -> list[str]:
    """The busiest other processes now (``ps``'s %CPU: averaged over each process's life)."""
    try:
        out = subprocess.run(
            ["ps", "-eo", "pid,pcpu,args", "--sort=-pcpu", "--no-headers"], capture_output=True, text=True, check=False
        ).stdout
    except OSError:
        return []
    rows = []
    for line in out.splitlines():
        pid, pcpu, args = line.split(None, 2)
        if int(pid) != os.getpid() and float(pcpu) >= 5.0 and not args.startswith("ps "):
            rows.append(f"{float(pcpu):.0f}% {args[:100]}")
    return rows[:limit]


class Load:
    """The machine's load over a part: cores busy in all, by this process, and by the rest."""

    def __init__(self):
        self.start_jiffies, self.start_cpu, self.t0 = _cpu_jiffies(), time.process_time(), time.perf_counter()
        self.loadavg_start, self.others_start = os.getloadavg(), _other_processes()

    def result(self) -> dict:
        busy, total = (b - a for a, b in zip(self.start_jiffies, _cpu_jiffies()))
        wall, cores = time.perf_counter() - self.t0, os.cpu_count()
        busy_cores = cores * busy / max(total, 1)
        mine = (time.process_time() - self.start_cpu) / max(wall, 1e-9)
        return {
            "wall_s": round(wall, 1),
            "cores_busy": round(busy_cores, 2),
            "cores_busy_this_process": round(mine, 2),
            "cores_busy_others": round(max(busy_cores - mine, 0.0), 2),
            "loadavg_start": [round(v, 2) for v in self.loadavg_start],
            "loadavg_end": [round(v, 2) for v in os.getloadavg()],
            "other_processes_at_start": self.others_start,
        }


# ---------------------------------------------------------------------------------------------- speed


class _Config:
    """One (num_envs, updates_per_step) trainer, built and compiled, with its running step."""

    def __init__(self, critic: str, env: str, num_envs: int, updates: int, buffer_size: int):
        algorithm = registry.get("sac")
        config = algorithm.make_config(critic=critic, num_envs=num_envs, updates_per_step=updates, start_steps=0)
        setting = runner.setting(runner.RunConfig(env=env, num_seeds=1, eval_episodes=1, buffer_size=buffer_size))
        algorithm.check(config, setting)
        self.num_envs, self.updates = num_envs, updates
        t0 = time.perf_counter()
        self.trainer = algorithm.make_trainer(config, setting)
        self.state = jax.block_until_ready(self.trainer.init(jax.vmap(jax.random.key)(np.arange(1))))
        self.build_s = time.perf_counter() - t0
        assert self.trainer.step_multiple == num_envs
        # every iteration from here on updates: step + num_envs >= update_after
        update_after = algorithm.first_update(config)
        self.step = -(-update_after // num_envs) * num_envs
        self.first_call_s = self.run(1)  # compiles
        self.iterations = 1

    def run(self, iterations: int) -> float:
        """Runs ``iterations`` iterations (``iterations * num_envs`` env steps); returns the seconds."""
        num_steps = iterations * self.num_envs
        t0 = time.perf_counter()
        self.state, metrics = self.trainer.run_chunk(self.state, self.step, num_steps)
        jax.block_until_ready((self.state, metrics))
        seconds = time.perf_counter() - t0
        if not bool(np.all(metrics["finite"])):
            raise RuntimeError(f"non-finite state in config {_label(self.num_envs, self.updates)}")
        self.step += num_steps
        return seconds

    def size(self, chunk_seconds: float) -> None:
        """Sets the chunk's iterations to last about ``chunk_seconds`` (from one timed iteration)."""
        self.iterations = int(min(10_000, max(1, round(chunk_seconds / self.run(1)))))

    def timer(self) -> timing.Timer:
        """One chunk per block; the unit is one iteration."""
        return lambda: self.run(self.iterations) / self.iterations


def speed(critic: str, env: str, grid: list[tuple[int, int]], rounds: int, chunk_seconds: float, buffer_size: int):
    load = Load()
    configs = {}
    for num_envs, updates in grid:
        timing.log(f"speed {critic}: building {_label(num_envs, updates)}")
        c = _Config(critic, env, num_envs, updates, buffer_size)
        c.size(chunk_seconds)
        timing.log(
            f"  build+init {c.build_s:.1f} s, first call {c.first_call_s:.1f} s, {c.iterations} iterations/chunk"
        )
        configs[(num_envs, updates)] = c

    def progress(r: int, last: dict) -> None:
        timing.log(
            f"speed {critic}: round {r + 1}/{rounds}: " + ", ".join(f"{_label(*k)} {t:.3f}" for k, t in last.items())
        )

    # seconds per iteration, per round
    times = timing.alternate({key: c.timer() for key, c in configs.items()}, rounds, progress=progress)
    base = times.get((1, 1))
    rows = []
    for (num_envs, updates), c in configs.items():
        per_iter = times[(num_envs, updates)]
        row = {
            "num_envs": num_envs,
            "updates_per_step": updates,
            "replay_ratio": updates / num_envs,
            "build_init_s": round(c.build_s, 1),
            "first_call_s": round(c.first_call_s, 1),
            "iterations_per_chunk": c.iterations,
            "ms_per_iteration": round(1e3 * statistics.median(per_iter), 2),
            "env_steps_per_s": round(statistics.median(num_envs / t for t in per_iter), 3),
            "grad_steps_per_s": round(statistics.median(updates / t for t in per_iter), 3),
            "round_ms_per_iteration": [round(1e3 * t, 2) for t in per_iter],
        }
        if base:
            ratios = [num_envs * r for r in timing.paired_ratios(per_iter, base)]
            row["speedup_vs_1x1"] = round(statistics.median(ratios), 2)
            row["speedup_range"] = [round(min(ratios), 2), round(max(ratios), 2)]
        rows.append(row)
    return {
        "algo": "sac",
        "critic": critic,
        "env": env,
        "seeds": 1,
        "buffer_size": buffer_size,
        "rounds": rounds,
        "chunk_seconds": chunk_seconds,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "rows": rows,
        "load": load.result(),
    }


# ---------------------------------------------------------------------------------------------- learning


def learning(grid: list[tuple[int, int]], seeds: int, total_steps: int, eval_every: int, eval_episodes: int):
    load = Load()
    algorithm = registry.get("sac")
    rows = []
    for num_envs, updates in grid:
        timing.log(f"learning: {_label(num_envs, updates)}")
        config = algorithm.make_config(
            critic="mlp",
            critic_overrides={"hidden_sizes": [64, 64]},
            actor_hidden_sizes=(64, 64),
            num_envs=num_envs,
            updates_per_step=updates,
        )
        with tempfile.TemporaryDirectory() as logdir:
            run = runner.RunConfig(
                env="pendulum",
                num_seeds=seeds,
                total_steps=total_steps,
                eval_every=eval_every,
                eval_episodes=eval_episodes,
                checkpoint_every=total_steps,
                buffer_size=max(100_000, total_steps),
                logdir=os.path.join(logdir, "run"),
            )
            t0 = time.perf_counter()
            runner.run("sac", run, config, verbose=False)
            wall = time.perf_counter() - t0
            csv = logger.read_csv(os.path.join(logdir, "run", "metrics.csv"))
        rates = [float(r["steps_per_sec"]) for r in csv if r["steps_per_sec"] not in ("", "None")]
        row = {
            "num_envs": num_envs,
            "updates_per_step": updates,
            "replay_ratio": updates / num_envs,
            "grad_steps": total_steps // num_envs * updates,
            "steps": [int(r["step"]) for r in csv],
            "return_mean": [round(float(r["return_mean"]), 1) for r in csv],
            "return_seeds": [[round(float(r[f"return_seed{s}"]), 1) for s in range(seeds)] for r in csv],
            "env_steps_per_s_per_seed": round(statistics.median(rates), 1) if rates else None,
            "wall_s": round(wall, 1),
        }
        timing.log(
            f"  returns {row['return_mean']}, {row['env_steps_per_s_per_seed']} env steps/s per seed, {wall:.0f} s"
        )
        rows.append(row)
    return {
        "algo": "sac",
        "env": "pendulum",
        "critic": "mlp (64, 64)",
        "actor": "(64, 64)",
        "seeds": seeds,
        "total_steps": total_steps,
        "eval_every": eval_every,
        "eval_episodes": eval_episodes,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "rows": rows,
        "load": load.result(),
    }


# ---------------------------------------------------------------------------------------------- report


def _load_line(load: dict) -> str:
    others = "; ".join(load["other_processes_at_start"]) or "none above 5% CPU"
    return (
        f"Load over the part ({load['wall_s']:.0f} s): {load['cores_busy']:.2f} of the cores busy on average, "
        f"{load['cores_busy_this_process']:.2f} by this benchmark and {load['cores_busy_others']:.2f} by other "
        f"processes (load average {load['loadavg_start'][0]:.1f} at the start, {load['loadavg_end'][0]:.1f} at "
        f"the end). Other processes at the start (ps %CPU): {others}."
    )


def _rate(value: float) -> str:
    """3 significant digits below 100 (0.683, 35.7), whole numbers with separators above (1,193)."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _speedup(row: dict) -> str:
    if "speedup_vs_1x1" not in row:
        return "n/a"
    low, high = row.get("speedup_range", (row["speedup_vs_1x1"],) * 2)
    return f"{row['speedup_vs_1x1']:.2f}x ({low:.2f}-{high:.2f})"


def to_markdown(result: dict) -> str:
    m = result["machine"]
    lines = [
        "# Throughput mode of the off-policy loop on the CPU: env steps/s and learning per env step",
        "",
        f"{m['cpu']}, {m['cores']} cores; jax {m['jax']} "
        f"(jaxlib {m['jaxlib']}), brax {m.get('brax', '?')}, mujoco {m.get('mujoco', '?')}. "
        "Method: `benchmarks/throughput.py`'s docstring; each part names the command that made it.",
        "",
        "`NxU` = `--num_envs=N --updates_per_step=U`: N envs per seed step together (one iteration = N env "
        "steps) and the iteration makes U gradient steps; replay ratio U/N gradient steps per env step. "
        "`1x1` is the paper's protocol.",
    ]
    for critic, part in result.get("speed", {}).items():
        lines += [
            "",
            f"## Speed: SAC, {critic} critic (paper size), MJX {part['env']}, 1 seed ({part['date']})",
            "",
            f"Command: `{part['command']}`.",
            "",
            f"Training program only (no evaluation), after compilation; median over {part['rounds']} rounds "
            f"of ~{part['chunk_seconds']:g} s chunks, the configs timed in alternation (order reversed each round). "
            "Speed-up: env steps/s over `1x1`'s in the same round (median, and the range over rounds).",
            "",
            "| config | replay ratio | env steps/s | gradient steps/s | speed-up vs 1x1 (env steps/s) | "
            "ms / iteration | build+init s | first call s (compile) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in part["rows"]:
            lines.append(
                f"| {_label(r['num_envs'], r['updates_per_step'])} | {r['replay_ratio']:.3g} | "
                f"{_rate(r['env_steps_per_s'])} | {_rate(r['grad_steps_per_s'])} | {_speedup(r)} | "
                f"{r['ms_per_iteration']:,.1f} | {r['build_init_s']:.0f} | {r['first_call_s']:.0f} |"
            )
        lines += ["", _load_line(part["load"])]
    if "learning" in result:
        part = result["learning"]
        steps = part["rows"][0]["steps"]
        lines += [
            "",
            f"## Learning per env step: SAC, MLP critic {part['critic'].split(' ', 1)[1]}, actor {part['actor']}, "
            f"pendulum, {part['seeds']} seeds ({part['date']})",
            "",
            f"Command: `{part['command']}`.",
            "",
            f"`runner.run`, {part['total_steps']:,} env steps per seed, evaluation every {part['eval_every']:,} "
            f"steps ({part['eval_episodes']} deterministic episodes); returns are means over seeds (a random policy "
            "scores about -1200 to -1700). env steps/s: per seed, the runner's training rate (compile and evaluation "
            "excluded); the runs followed one another, so the load differed between them. Wall: the whole run.",
            "",
            "| config | replay ratio | gradient steps | " + " | ".join(f"return @{s:,}" for s in steps) + " | "
            "env steps/s per seed | wall s |",
            "|---|---|---|" + "---|" * len(steps) + "---|---|",
        ]
        for r in part["rows"]:
            returns = " | ".join(f"{v:.0f}" for v in r["return_mean"])
            rate = r["env_steps_per_s_per_seed"]
            lines.append(
                f"| {_label(r['num_envs'], r['updates_per_step'])} | {r['replay_ratio']:.3g} | {r['grad_steps']:,} | "
                f"{returns} | {rate:,.0f} | {r['wall_s']:.0f} |"
            )
        per_seed = "; ".join(
            f"{_label(r['num_envs'], r['updates_per_step'])}: {r['return_seeds'][-1]}" for r in part["rows"]
        )
        lines += ["", f"Final returns per seed: {per_seed}.", "", _load_line(part["load"])]
    if result.get("notes"):  # written by hand into the JSON after a run; a new run drops them
        lines += ["", "## Reading", ""] + [f"- {note}" for note in result["notes"]]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", default="all", choices=("speed", "learning", "all"))
    parser.add_argument("--env", default="hopper", help="speed part: the MJX env")
    parser.add_argument("--critics", default="mlp,sa_hyper", help="speed part: critics, timed one after the other")
    parser.add_argument("--grid", default=SPEED_GRID, help="speed part: NxU configs of the MLP critic")
    parser.add_argument("--hyper_grid", default=HYPER_GRID, help="speed part: NxU configs of the hypernetwork critic")
    parser.add_argument("--rounds", type=int, default=5, help="speed part: rounds (MLP)")
    parser.add_argument("--hyper_rounds", type=int, default=5, help="speed part: rounds (hypernetwork critic)")
    parser.add_argument("--chunk_seconds", type=float, default=2.0, help="speed part: seconds per timed chunk")
    parser.add_argument("--buffer_size", type=int, default=100_000, help="speed part: replay capacity")
    parser.add_argument("--learning_grid", default=LEARNING_GRID)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--total_steps", type=int, default=8000)
    parser.add_argument("--eval_every", type=int, default=2000)
    parser.add_argument("--eval_episodes", type=int, default=5)
    parser.add_argument("--out", default=RESULTS, help="output path without extension")
    args = parser.parse_args()
    quiet.warnings_off()

    result = {}
    if os.path.exists(args.out + ".json"):  # a part run alone keeps the other part's results
        with open(args.out + ".json") as f:
            result = json.load(f)
    result.pop("notes", None)  # they read the previous numbers
    result["machine"] = timing.machine()
    command = " ".join(["python -m benchmarks.throughput", *sys.argv[1:]])
    timing.log(f"{result['machine']}")
    t0 = time.perf_counter()

    def save():
        with open(args.out + ".json", "w") as f:
            json.dump(result, f, indent=1)
        with open(args.out + ".md", "w") as f:
            f.write(to_markdown(result))

    if args.part in ("learning", "all"):
        result["learning"] = learning(
            _grid(args.learning_grid), args.seeds, args.total_steps, args.eval_every, args.eval_episodes
        )
        result["learning"]["command"] = command
        save()
    if args.part in ("speed", "all"):
        result.setdefault("speed", {})
        for critic in args.critics.split(","):
            hyper = "hyper" in critic
            grid = _grid(args.hyper_grid if hyper else args.grid)
            rounds = args.hyper_rounds if hyper else args.rounds
            result["speed"][critic] = speed(critic, args.env, grid, rounds, args.chunk_seconds, args.buffer_size)
            result["speed"][critic]["command"] = command
            save()
    save()
    timing.log(f"done in {time.perf_counter() - t0:.0f} s -> {args.out}.md")
    print(to_markdown(result))


if __name__ == "__main__":
    main()
