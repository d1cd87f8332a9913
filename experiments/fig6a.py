"""The paper's Fig. 6(a) (SAC; ``fig6b.py``: the same for TD3, Fig. 6(b)): the eight critics on the
four MuJoCo tasks, scores normalised by the MLP critic's:

  python -m experiments.fig6a --scale=cpu
  python -m experiments.fig6a --scale=paper     # a GPU workload

Paper scale: ant, halfcheetah, hopper, walker2d; 5 seeds trained in one program per environment and
critic; 1M steps; evaluation every 5,000 steps (10 episodes).
CPU scale (labelled so everywhere; the paper's values in brackets): hopper and halfcheetah (--envs),
2 seeds [5], 30k steps [1M], 5 evaluation episodes [10], replay 100k [1M], and the big critics
shrunk: sa_hyper/as_hyper primary ResNet 64,128,256 [256,512,1024] with a dynamic layer of 64 [256],
mlp_large 512x512 [2900x2900], res35 with 5 blocks [35]. Runs land in <logdir>/<env>/<critic>; the
curves, normalised bars and IQM in <out>/fig6a_<scale>/ (fig6b_<scale>/ for TD3).
"""

import os
import sys

from experiments import fig4, sweep

CRITICS = ("sa_hyper", "as_hyper", "mlp", "mlp_small", "mlp_large", "resnet_features", "res35", "d2rl")
ENVS = {"paper": ("ant", "halfcheetah", "hopper", "walker2d"), "cpu": ("hopper", "halfcheetah")}
FLAGS = {
    "paper": ["--num_seeds=5", "--seed=0", "--total_steps=1000000", "--eval_every=5000", "--eval_episodes=10"],
    "cpu": [
        "--num_seeds=2",
        "--seed=0",
        "--total_steps=30000",
        "--eval_every=5000",
        "--eval_episodes=5",
        "--checkpoint_every=5000",
        "--buffer_size=100000",
    ],
}
OVERRIDES = {
    "paper": {},
    "cpu": {
        "sa_hyper": fig4.SHRUNK,
        "as_hyper": fig4.SHRUNK,
        "mlp_large": '{"hidden_sizes": [512, 512]}',
        "res35": '{"num_blocks": 5}',
    },
}


def main(algo: str = "sac", fig: str = "fig6a", doc: str = __doc__):
    args = sweep.figure_parser(doc, fig, ENVS).parse_args()
    envs = sweep.env_list(args, ENVS)
    folder = sweep.sweep_dir(args, fig)
    shrunk = "; ".join(f"{c}: --critic_overrides='{o}'" for c, o in OVERRIDES[args.scale].items())
    note = f"{algo.upper()} on {', '.join(envs)}, the eight critics: {' '.join(FLAGS[args.scale])}"
    note += f"; {shrunk}." if shrunk else "."
    title = f"Fig. 6({fig[-1]}): {algo.upper()} with eight critics, scores normalised by the MLP critic's"
    runs = sweep.grid(algo, "critic", CRITICS, envs, FLAGS[args.scale], OVERRIDES[args.scale])
    reports = [sweep.plot(folder, os.path.join(args.out, f"{fig}_{args.scale}"))]
    sys.exit(sweep.figure(args, fig, runs, folder, reports, title, note))


if __name__ == "__main__":
    main()
