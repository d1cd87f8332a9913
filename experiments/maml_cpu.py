"""MAML on HalfCheetah-Vel at CPU scale: the three policies, same seed, one figure.

  python -m experiments.maml_cpu --iterations=40 --logdir=runs/maml_cpu
  python -m experiments.maml_cpu --policies=hyper --logdir=runs/maml_cpu_lr -- --inner_lr=0.1

CPU scale (labelled so everywhere): 10 tasks x 10 episodes per iteration (paper: 40 x 20), 10 test
tasks x 10 episodes per evaluation (paper: 20 x 20), evaluation every 5 iterations; everything else
is MAML's ``paper`` preset (horizon 200, the authors' inner step sizes, first-order meta-gradient and
the pre-adaptation baseline as their code, TRPO). On a machine without an accelerator the runs step the
tasks on MuJoCo's C engine (MAML's ``--backend=auto``; docs/maml_native.md), ``-- --backend=mjx`` on MJX.
The three runs
go as parallel processes (``--parallel``), so they share the machine equally. Writes each run's
folder under --logdir, and --out/maml_cpu_<env>.{png,md}: post-adaptation (solid) and
pre-adaptation (dashed) test returns per policy, and the table of the last evaluation.
"""

import os
import sys

from experiments import cpu_sweep, sweep
from hyperjax.experiments import checks

POLICIES = ("vanilla", "context", "hyper")
CPU_SCALE = [
    "--meta_batch=10",
    "--fast_batch=10",
    "--num_test_tasks=10",
    "--eval_episodes=10",
    "--eval_every=5",
    "--checkpoint_every=5",
]
CURVES = {"return_mean": ("after adaptation", "-"), "return_pre_mean": ("before", "--")}


def main():
    parser = cpu_sweep.parser(__doc__)
    parser.add_argument("--env", default="halfcheetah_vel")
    parser.add_argument("--iterations", type=checks.positive, default=40)
    parser.add_argument("--policies", default=",".join(POLICIES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--parallel", type=checks.positive, default=3, help="runs at once")
    parser.add_argument("--logdir", default="runs/maml_cpu")
    parser.add_argument("--out", default="experiments/results")
    parser.add_argument("--report_only", action="store_true", help="redraw the figure from finished runs")
    parser.add_argument("flags", nargs="*", help="more MAML flags for every run, e.g. --inner_lr=0.1")
    args = parser.parse_args()
    env, logdir = args.env, args.logdir
    policies = cpu_sweep.check(args.policies, "--policies", POLICIES, env, "halfcheetah_vel", logdir, args.out)
    code = 0
    if not args.report_only:
        common = [f"--env={args.env}", f"--total_steps={args.iterations}", f"--seed={args.seed}", *CPU_SCALE]
        runs = {policy: [f"--policy={policy}", *common, *args.flags] for policy in policies}
        try:
            code = cpu_sweep.launch("maml", runs, args.logdir, args.parallel)
        except (ValueError, OSError) as e:
            sweep.refuse(str(e))
    note = (
        f"CPU scale: {' '.join(CPU_SCALE)} (paper: 40 tasks x 20 episodes, 20 test tasks x 20 episodes); "
        f"seed {args.seed}; runs in parallel on {cpu_sweep.machine()}."
    )
    stem = os.path.join(args.out, f"maml_cpu_{args.env}")
    title = f"MAML on {args.env} (CPU scale): test return of 10 tasks"
    command = "python -m experiments.maml_cpu " + " ".join(sys.argv[1:])

    def draw() -> str:
        if not os.path.isdir(args.logdir):
            raise ValueError(f"--logdir={args.logdir} holds no runs yet: nothing to draw")
        cpu_sweep.report(args.logdir, stem, title, CURVES, note, command)
        return f"{stem}.{{png,md}}"

    cpu_sweep.finish(code, draw)


if __name__ == "__main__":
    main()
