"""What the paper physics costs: env steps/s of each robot on Gym's model files against Brax's (both on MJX).

Run:
  python -m benchmarks.gym_physics                      # 4 robots x (gym, brax) x (1 env, --batch envs)
  python -m benchmarks.gym_physics --robots=ant --batch=800 --steps=20

Both physics run the ``paper`` preset's task (``registry.make(robot, physics=...)``); a number is a
jitted ``lax.scan`` of ``--steps`` env steps of ``jax.vmap(env.step)`` (zero actions) over the batch,
compile excluded (``benchmarks.cases.env_timer``). The two physics of a robot and size are timed
in turn for ``--rounds`` rounds (``env_speed.best_of``), best round each, so their ratio is fair while
other processes load the CPU. Compile time: the ``scan``'s ahead-of-time compile, once per case. Writes
a Markdown table to stdout (and ``--out`` as JSON).
"""

import argparse
import json

from benchmarks import cases, env_speed, timing
from hyperjax.envs import registry

ROBOTS = ("hopper", "walker2d", "halfcheetah", "ant")


def measure(robot: str, num_envs: int, steps: int, rounds: int) -> dict:
    """``{physics: {compile_s, steps_per_s}}`` and the ratio brax/gym for one robot and batch size."""
    compiles, timers = {}, {}
    for physics in ("gym", "brax"):
        env = registry.make(robot, physics=physics)
        compiles[physics], timers[physics] = cases.env_timer(env, num_envs, steps)
    speeds = env_speed.best_of(timers, rounds)
    out = {p: {"compile_s": round(compiles[p], 1), **speeds[p]} for p in speeds}
    out["brax_over_gym"] = round(out["brax"]["steps_per_s"] / out["gym"]["steps_per_s"], 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--robots", default=",".join(ROBOTS))
    parser.add_argument("--batch", type=int, default=128, help="the batched case's envs (MAML's: 800)")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    results = {"cpu": timing.cpu_model(), "steps": args.steps, "rows": []}
    print(f"CPU: {results['cpu']}\n")
    print("| robot | envs | gym steps/s | brax steps/s | brax / gym | gym compile s | brax compile s |")
    print("|---|---|---|---|---|---|---|")
    for robot in args.robots.split(","):
        for num_envs in (1, args.batch):
            r = measure(robot, num_envs, args.steps, args.rounds)
            results["rows"].append({"robot": robot, "envs": num_envs, **r})
            g, b = r["gym"], r["brax"]
            print(
                f"| {robot} | {num_envs} | {g['steps_per_s']:,} | {b['steps_per_s']:,} | {r['brax_over_gym']} "
                f"| {g['compile_s']} | {b['compile_s']} |",
                flush=True,
            )
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
