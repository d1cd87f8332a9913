"""The paper's Fig. 6(c): MAML with the vanilla, context and hyper policies on the four meta tasks,
scores normalised by the vanilla policy's:

  python -m experiments.fig6c --scale=cpu
  python -m experiments.fig6c --scale=paper     # a GPU workload

Paper scale: halfcheetah_vel, halfcheetah_fwd_back, ant_vel, ant_fwd_back; 5 seeds in one program
per task and policy; everything else the entry point's defaults, MAML's ``paper`` preset (the
authors' code as it ran: 400 iterations of 40 tasks x 20 episodes, 20 test tasks x 20 episodes per
evaluation, first-order meta-gradient, the pre-adaptation baseline, Ant-Fwd-Back's +-1-radian
headings).
CPU scale (labelled so everywhere): halfcheetah_vel only (--envs), 1 seed, 40 iterations, and
experiments/maml_cpu.py's reduced batches (10 tasks x 10 episodes per iteration, 10 test tasks x 10
episodes every 5 iterations). Runs land in <logdir>/<env>/<policy>; the curves and scores in
<out>/fig6c_<scale>/ show ``return_mean``, the test return after the adaptation step; each run's
metrics.csv also holds ``return_pre_mean``, the return before it.
"""

import os
import sys

from experiments import maml_cpu, sweep

ENVS = {"paper": ("halfcheetah_vel", "halfcheetah_fwd_back", "ant_vel", "ant_fwd_back"), "cpu": ("halfcheetah_vel",)}
FLAGS = {"paper": ["--num_seeds=5", "--seed=0"], "cpu": ["--total_steps=40", "--seed=0", *maml_cpu.CPU_SCALE]}


def main():
    args = sweep.figure_parser(__doc__, "fig6c", ENVS).parse_args()
    envs = sweep.env_list(args, ENVS)
    folder = sweep.sweep_dir(args, "fig6c")
    runs = sweep.grid("maml", "policy", maml_cpu.POLICIES, envs, FLAGS[args.scale])
    note = (
        f"MAML on {', '.join(envs)}, policies {', '.join(maml_cpu.POLICIES)}: {' '.join(FLAGS[args.scale]) or '-'} "
        "(other settings: the entry point's defaults, the paper's). The scores are `return_mean`, the test return "
        "after adaptation; `return_pre_mean` (before adaptation) is in each run's metrics.csv."
    )
    title = "Fig. 6(c): MAML with vanilla, context and hyper policies"
    reports = [sweep.plot(folder, os.path.join(args.out, f"fig6c_{args.scale}"))]
    sys.exit(sweep.figure(args, "fig6c", runs, folder, reports, title, note))


if __name__ == "__main__":
    main()
