"""Before/after: the same benchmark cases on two checkouts, run in alternation (A B, then B A, ...),
one fresh process per run, so both see the same drift of a shared machine.

Run: python -m benchmarks.compare --before=/path/to/old/checkout [--after=.] [--rounds=2]
Prints one JSON line per case (every run's figure, and the medians) and writes them to --out.
A checkout must have the case in its own ``benchmarks/cases.py``.
"""

import argparse
import json
import statistics

from benchmarks import process

DEFAULT_CASES = [
    {"case": "update_jax", "algo": "sac", "critic": "sa_hyper", "repeats": 7, "inner": 3},
    {"case": "update_jax", "algo": "sac", "critic": "mlp", "repeats": 15, "inner": 30},
    {"case": "update_jax", "algo": "td3", "critic": "sa_hyper", "repeats": 7, "inner": 4},
    {"case": "update_jax", "algo": "td3", "critic": "mlp", "repeats": 15, "inner": 30},
    {"case": "train", "env": "ant", "critic": "mlp", "seeds": 1, "chunk": 100},
    {"case": "train", "env": "ant", "critic": "mlp", "seeds": 2, "chunk": 100},
    {"case": "train", "env": "ant", "critic": "sa_hyper", "seeds": 1, "chunk": 10},
]
FIGURES = ("ms", "env_steps_per_s", "hlo_sha256")  # the first one a result holds is compared


def compare(before: str, after: str, cases: list[dict], rounds: int) -> list[dict]:
    rows = []
    for spec in cases:
        figures = {"before": [], "after": []}
        for r in range(rounds):
            for name in ("before", "after") if r % 2 == 0 else ("after", "before"):
                result = process.run_case(spec, checkout=before if name == "before" else after)
                key = next((k for k in FIGURES if k in result), "error")
                figures[name].append(result.get(key))
        row = {**spec, **figures}
        for name, values in figures.items():
            numbers = [v for v in values if isinstance(v, (int, float))]
            row[f"{name}_median"] = statistics.median(numbers) if numbers else None
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="the older checkout (a git worktree)")
    parser.add_argument("--after", default=".", help="the newer checkout (default: this one)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--cases", help="JSON list of case specs (default: updates and training)")
    parser.add_argument("--out", default="compare.json")
    args = parser.parse_args()
    cases = json.loads(args.cases) if args.cases else DEFAULT_CASES
    rows = compare(args.before, args.after, cases, args.rounds)
    with open(args.out, "w") as f:
        json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
