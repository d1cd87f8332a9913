"""PEARL on HalfCheetah-Vel (and, out of distribution, -Vel-Medium) at CPU scale: both models,
same seed, one figure per environment.

  python -m experiments.pearl_cpu --env=halfcheetah_vel --iterations=30
  python -m experiments.pearl_cpu --env=halfcheetah_vel_medium --iterations=30

CPU scale (labelled so everywhere; the paper's values in brackets): 20 training tasks [100],
10 test tasks [30], 400 initial steps per task [2,000], 2 tasks per iteration [5] x 200 prior
steps [400] + 400 posterior steps [600], 200 gradient steps per iteration [2,000] on 8 tasks
[16] x 128 transitions [256] with 64 context transitions [100], the hyper model's primary
ResNet at widths 64,128,256 [256,512,1024] and a dynamic layer of 64 [256]; evaluation every 5
iterations by the oyster protocol (600 steps per task). Everything else is the paper's (MLP
3 x 300, encoder 200 x 3, latent 5, learning rates, reward scale, KL weight). Writes each run's
folder under --logdir and experiments/results/pearl_cpu_<env>.{png,md}.

On a CPU the runs step HalfCheetah on MuJoCo's C engine (PEARL's default --backend=auto resolves to
native there: agents/pearl_host.py); end the command with `-- --backend=mjx` to keep MJX.
"""

import os
import sys

from experiments import cpu_sweep, sweep
from hyperjax.experiments import checks

MODELS = ("mlp", "hyper")
CPU_SCALE = [
    "--num_train_tasks=20",
    "--num_test_tasks=10",
    "--num_initial_steps=400",
    "--num_tasks_sample=2",
    "--num_steps_prior=200",
    "--num_extra_rl_steps_posterior=400",
    "--num_train_steps=200",
    "--meta_batch=8",
    "--batch_size=128",
    "--embedding_batch_size=64",
    "--hyper_widths=64,128,256",
    "--hyper_hidden_sizes=64",
    "--eval_every=5",
    "--checkpoint_every=5",
    "--buffer_size=20000",
]
CURVES = {
    "return_mean": ("test tasks, last trajectory", "-"),
    "return_prior_mean": ("test tasks, first trajectory (prior z)", ":"),
    "return_train_mean": ("training tasks, last trajectory", "--"),
}


def main():
    parser = cpu_sweep.parser(__doc__)
    parser.add_argument("--env", default="halfcheetah_vel")
    parser.add_argument("--iterations", type=checks.positive, default=30)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--parallel", type=checks.positive, default=2, help="runs at once")
    parser.add_argument("--logdir", default=None, help="default runs/pearl_cpu_<env>")
    parser.add_argument("--out", default="experiments/results")
    parser.add_argument("--report_only", action="store_true", help="redraw the figure from the runs")
    parser.add_argument("flags", nargs="*", help="more PEARL flags for every run")
    args = parser.parse_args()
    logdir = args.logdir or f"runs/pearl_cpu_{args.env}"
    models = cpu_sweep.check(args.models, "--models", MODELS, args.env, "halfcheetah_vel", logdir, args.out)
    common = [f"--env={args.env}", f"--total_steps={args.iterations}", f"--seed={args.seed}", *CPU_SCALE, *args.flags]
    code = 0
    if not args.report_only:
        runs = {model: [f"--model={model}", *common] for model in models}
        try:
            code = cpu_sweep.launch("pearl", runs, logdir, args.parallel)
        except (ValueError, OSError) as e:
            sweep.refuse(str(e))
    note = (
        f"CPU scale (see experiments/pearl_cpu.py for the paper's values): {' '.join(CPU_SCALE)}; seed {args.seed}; "
        f"runs {args.parallel} at a time on {cpu_sweep.machine()}."
    )
    stem = os.path.join(args.out, f"pearl_cpu_{args.env}")
    title = f"PEARL on {args.env} (CPU scale)"
    command = "python -m experiments.pearl_cpu " + " ".join(sys.argv[1:])

    def draw() -> str:
        if not os.path.isdir(logdir):
            raise ValueError(f"--logdir={logdir} holds no runs yet: nothing to draw")
        cpu_sweep.report(logdir, stem, title, CURVES, note, command)
        return f"{stem}.{{png,md}}"

    cpu_sweep.finish(code, draw)


if __name__ == "__main__":
    main()
