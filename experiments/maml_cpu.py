"""MAML on HalfCheetah-Vel at CPU scale: the three policies, same seed, one figure.

  python -m experiments.maml_cpu --iterations=40 --logdir=runs/maml_cpu
  python -m experiments.maml_cpu --policies=hyper --logdir=runs/maml_cpu_lr -- --inner_lr=0.1

CPU scale (labelled so everywhere): 10 tasks x 10 episodes per iteration (paper: 40 x 20), 10 test
tasks x 10 episodes per evaluation (paper: 20 x 20), evaluation every 5 iterations; everything else
is the paper's (horizon 200, the authors' inner step sizes, second-order MAML, TRPO). The three runs
go as parallel processes (``--parallel``), so they share the machine equally. Writes each run's
folder under --logdir, and --out/maml_cpu_<env>.{png,md}: post-adaptation (solid) and
pre-adaptation (dashed) test returns per policy, and the table of the last evaluation.
"""

import argparse
import os
import platform
import subprocess
import sys
import time

import numpy as np

POLICIES = ("vanilla", "context", "hyper")
CPU_SCALE = [
    "--meta_batch=10",
    "--fast_batch=10",
    "--num_test_tasks=10",
    "--eval_episodes=10",
    "--eval_every=5",
    "--checkpoint_every=5",
]


def read(path: str) -> dict:
    import csv

    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {
        "step": np.array([int(r["step"]) for r in rows]),
        "post": np.array([float(r["return_mean"]) for r in rows]),
        "pre": np.array([float(r["return_pre_mean"]) for r in rows]),
        "wall_s": np.array([float(r["wall_s"]) for r in rows]),
    }


def report(logdir: str, out: str, env: str, extra: list[str], note: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    lines = [
        f"# MAML on {env}, CPU scale",
        "",
        note,
        "",
        "| policy | iterations | test return before adaptation | after adaptation | wall time |",
        "|---|---:|---:|---:|---:|",
    ]
    for i, name in enumerate(sorted(os.listdir(logdir))):
        path = os.path.join(logdir, name, "metrics.csv")
        if not os.path.exists(path):
            continue
        curve = read(path)
        ax.plot(curve["step"], curve["post"], color=f"C{i}", lw=2, label=f"{name}: after adaptation")
        ax.plot(curve["step"], curve["pre"], color=f"C{i}", lw=1.2, ls="--", label=f"{name}: before")
        lines.append(
            f"| {name} | {curve['step'][-1]} | {curve['pre'][-1]:.1f} | {curve['post'][-1]:.1f} | "
            f"{curve['wall_s'][-1] / 60:.0f} min |"
        )
    ax.set(xlabel="meta-iteration", ylabel="test return (10 tasks)", title=f"MAML on {env} (CPU scale)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    os.makedirs(out, exist_ok=True)
    fig.savefig(os.path.join(out, f"maml_cpu_{env}.png"))
    lines += ["", "Command: `python -m experiments.maml_cpu " + " ".join(extra) + "`"]
    with open(os.path.join(out, f"maml_cpu_{env}.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="halfcheetah_vel")
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--policies", default=",".join(POLICIES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--parallel", type=int, default=3, help="runs at once")
    parser.add_argument("--logdir", default="runs/maml_cpu")
    parser.add_argument("--out", default="experiments/results")
    parser.add_argument("--report_only", action="store_true", help="redraw the figure from finished runs")
    parser.add_argument("flags", nargs="*", help="more MAML flags for every run, e.g. --inner_lr=0.1")
    args = parser.parse_args()
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    note = (
        f"CPU scale: {' '.join(CPU_SCALE)} (paper: 40 tasks x 20 episodes, 20 test tasks x 20 episodes); "
        f"seed {args.seed}; "
        f"runs in parallel on {machine}."
    )
    if not args.report_only:
        procs, start = [], time.time()
        for policy in args.policies.split(","):
            cmd = [sys.executable, "-m", "hyperjax.experiments.maml", f"--env={args.env}", f"--policy={policy}"]
            cmd += [f"--total_steps={args.iterations}", f"--seed={args.seed}", *CPU_SCALE, *args.flags]
            cmd += [f"--logdir={os.path.join(args.logdir, policy)}"]
            checkpoints = os.path.join(args.logdir, policy, "checkpoints")
            if os.path.isdir(checkpoints) and os.listdir(checkpoints):
                cmd.append("--resume")
            while len([p for p in procs if p.poll() is None]) >= args.parallel:
                time.sleep(5)
            os.makedirs(args.logdir, exist_ok=True)
            with open(os.path.join(args.logdir, f"{policy}.log"), "w") as log:
                procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT))
        codes = [p.wait() for p in procs]
        print(f"runs finished with exit codes {codes} in {(time.time() - start) / 60:.0f} min", file=sys.stderr)
    report(args.logdir, args.out, args.env, sys.argv[1:], note)
    print(f"figure and table in {args.out}/maml_cpu_{args.env}.{{png,md}}")


if __name__ == "__main__":
    main()
