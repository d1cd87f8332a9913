"""The paper's Fig. 5 (gradient noise of the MAML meta-step: the spread of the test returns after
many resampled meta-steps from the same parameters), by ``python -m hyperjax.experiments.maml_noise``:

  python -m experiments.fig5 --scale=cpu
  python -m experiments.fig5 --scale=paper     # a GPU workload

One maml_noise run per policy (so they can go in parallel); an interrupted sweep skips the finished
runs and resumes the others from their checkpoints (``--resume``: the same numbers as if never stopped).
Paper scale: halfcheetah_vel, maml_noise's defaults (the paper's: measurements at iterations
50,150,300,450, 50 resampled meta-steps each; MAML's ``paper`` preset: the authors' batches, first-order
meta-gradient and pre-adaptation baseline).
CPU scale (labelled so everywhere; the paper's values in brackets): measurements at iterations
10,20,30 [50,150,300,450], 10 resampled steps each [50], 10 tasks x 10 episodes per meta-step
[40 x 20], 10 test tasks [20]. Runs land in <logdir>/<env>/<policy> (each with its own noise.png);
the combined box plots and table in <out>/fig5_<scale>/noise.{png,md,csv}.
"""

import csv
import os
import sys
from collections.abc import Callable

from experiments import maml_cpu, sweep

ENVS = {"paper": ("halfcheetah_vel",), "cpu": ("halfcheetah_vel",)}
FLAGS = {
    "paper": ["--seed=0"],
    "cpu": [
        "--seed=0",
        "--iterations=10,20,30",
        "--resamples=10",
        "--meta_batch=10",
        "--fast_batch=10",
        "--num_test_tasks=10",
    ],
}
PAPER_ITERATIONS = "50,150,300,450"


def rows(rundir: str) -> list[dict]:
    path = os.path.join(rundir, "noise.csv")
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def finished(flags: list[str]) -> Callable[[str], bool]:
    """``rundir -> bool``: its noise.csv holds the last measurement, all resamples of it. Flags that do not
    parse count no run as finished (maml_noise then refuses them in one line)."""
    try:
        last = max(int(i) for i in (sweep.flag_value(flags, "iterations") or PAPER_ITERATIONS).split(","))
        resamples = int(sweep.flag_value(flags, "resamples") or 50)
    except ValueError:
        return lambda rundir: False

    def done(rundir: str) -> bool:
        try:
            return sum(int(r["iteration"]) == last for r in rows(rundir)) >= resamples
        except (ValueError, KeyError, TypeError):  # a noise.csv of another kind: not this run's
            return False

    return done


def combine(folder: str, runs: list[sweep.Run], out_dir: str, title: str) -> Callable[[], int]:
    def combine_runs() -> int:
        """The runs' noise.csv files in one table and figure (maml_noise's own writer)."""
        from hyperjax.analysis import maml_noise

        os.makedirs(out_dir, exist_ok=True)
        found = [row for run in runs for row in rows(os.path.join(folder, run.name))]
        if not found:
            print(f"no noise.csv under {folder}", file=sys.stderr)
            return 1
        maml_noise.write_outputs(out_dir, found, title)
        return 0

    return combine_runs


def main():
    args = sweep.figure_parser(__doc__, "fig5", ENVS).parse_args()
    envs = sweep.env_list(args, ENVS)
    folder = sweep.sweep_dir(args, "fig5")
    flags = FLAGS[args.scale]
    runs = sweep.grid("maml_noise", "policies", maml_cpu.POLICIES, envs, flags, done=finished(flags))
    title = f"Fig. 5: MAML meta-step noise on {', '.join(envs)}"
    note = f"maml_noise on {', '.join(envs)}, one run per policy: {' '.join(flags)} (other settings: its defaults)."
    out_dir = os.path.join(args.out, f"fig5_{args.scale}")
    label = f"{title} ({sweep.SCALE_LABELS[args.scale]})"
    reports = [sweep.Report(out_dir, combine(folder, runs, out_dir, label))]
    sys.exit(sweep.figure(args, "fig5", runs, folder, reports, title, note))


if __name__ == "__main__":
    main()
