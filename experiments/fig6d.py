"""The paper's Fig. 6(d): PEARL with the MLP and hyper models on the four meta tasks, scores
normalised by the MLP model's (``fig7.py``: the out-of-distribution task):

  python -m experiments.fig6d --scale=cpu
  python -m experiments.fig6d --scale=paper     # a GPU workload

Paper scale: halfcheetah_vel, halfcheetah_fwd_back, ant_vel, ant_fwd_back; 5 seeds in one program
per task and model; everything else the entry point's defaults, which are the authors' config for
each environment (``pearl.AUTHORS_CONFIGS``, from PEARL/configs/<env>.json over default.py): the vel
tasks 100 training / 30 test tasks, meta-batch 16, 400 prior + 600 posterior steps, context batch
100, 2,000 gradient steps, 1 evaluation run; halfcheetah_fwd_back the directions [-1, +1] for
training and testing, meta-batch 4, 1,000 + 1,000 steps, context batch 256, 4 runs; ant_fwd_back
the same directions (headings of +-1 rad, the authors' ant_dir.py), meta-batch 4, 400 + 600 steps,
context batch 256, 4,000 gradient steps, 2 runs.
CPU scale (labelled so everywhere): halfcheetah_vel only (--envs), 1 seed, 30 iterations, and
experiments/pearl_cpu.py's reduced schedule and hyper model (20 training tasks, 200 gradient steps
per iteration, primary ResNet 64,128,256). Runs land in <logdir>/<env>/<model>; the curves and
scores in <out>/fig6d_<scale>/.
"""

import os
import sys

from experiments import pearl_cpu, sweep

ENVS = {"paper": ("halfcheetah_vel", "halfcheetah_fwd_back", "ant_vel", "ant_fwd_back"), "cpu": ("halfcheetah_vel",)}
FLAGS = {"paper": ["--num_seeds=5", "--seed=0"], "cpu": ["--total_steps=30", "--seed=0", *pearl_cpu.CPU_SCALE]}


def main(fig: str = "fig6d", envs: dict = ENVS, doc: str = __doc__, title: str = "Fig. 6(d): PEARL, MLP vs hyper"):
    args = sweep.figure_parser(doc, fig, envs).parse_args()
    names = sweep.env_list(args, envs)
    folder = sweep.sweep_dir(args, fig)
    runs = sweep.grid("pearl", "model", pearl_cpu.MODELS, names, FLAGS[args.scale])
    note = (
        f"PEARL on {', '.join(names)}, models {', '.join(pearl_cpu.MODELS)}: {' '.join(FLAGS[args.scale])} "
        "(other settings: the entry point's defaults, the authors' config per environment). `return_mean`: test tasks; "
        "`return_train_mean`: training tasks."
    )
    reports = [sweep.plot(folder, os.path.join(args.out, f"{fig}_{args.scale}"))]
    sys.exit(sweep.figure(args, fig, runs, folder, reports, title, note))


if __name__ == "__main__":
    main()
