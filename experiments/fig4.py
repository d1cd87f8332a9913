"""The paper's Fig. 4 (TD3 learning curves with the SA-Hyper, AS-Hyper and MLP critics), and the runs
Fig. 3's critic-gradient analysis reads (their parameter snapshots):

  python -m experiments.fig4 --scale=cpu
  python -m experiments.fig4 --scale=paper     # a GPU workload

Paper scale: ant, halfcheetah, hopper, walker2d; 5 seeds trained in one program per environment and
critic; 1M steps; evaluation every 5,000 steps (10 episodes); parameter snapshots every 10,000, of
which Fig. 3 analyses 0 to 590,000 (the authors' bias_test.py: range(0, 600000, 10000)).
CPU scale (labelled so everywhere; the paper's values in brackets): hopper only (--envs), 3 seeds
[5], 30k steps [1M], 5 evaluation episodes [10], replay 100k [1M], the hypernetwork critics'
primary ResNet at widths 64,128,256 [256,512,1024] and a dynamic layer of 64 [256]. Runs land in
<logdir>/<env>/<critic>; then the curves, normalised scores and IQM go to <out>/fig4_<scale>/ and
the gradient analysis (Fig. 3) to <out>/fig3_<scale>/.
"""

import os
import sys

from experiments import sweep

CRITICS = ("sa_hyper", "as_hyper", "mlp")
ENVS = {"paper": ("ant", "halfcheetah", "hopper", "walker2d"), "cpu": ("hopper",)}
SHRUNK = '{"latent_widths": [64, 128, 256], "hidden_sizes": [64]}'
FLAGS = {
    "paper": [
        "--num_seeds=5",
        "--seed=0",
        "--total_steps=1000000",
        "--eval_every=5000",
        "--eval_episodes=10",
        "--snapshot_every=10000",
    ],
    # exactly the flags the recorded CPU runs were started with (their --resume checks the config)
    "cpu": [
        "--num_seeds=3",
        "--seed=0",
        "--total_steps=30000",
        "--eval_every=5000",
        "--eval_episodes=5",
        "--checkpoint_every=5000",
        "--snapshot_every=10000",
        "--buffer_size=100000",
    ],
}
OVERRIDES = {"paper": {}, "cpu": {"sa_hyper": SHRUNK, "as_hyper": SHRUNK}}
# Fig. 3's snapshots: the authors' bias_test.py reads 0, 10k, ..., 590k (range(0, 600000, 10000)); CPU scale: all
GRADIENT_LAST_STEP = {"paper": 590_000, "cpu": None}
TITLE = "Fig. 4: TD3 with the SA-Hyper, AS-Hyper and MLP critics"
FIG3 = "Fig. 3: cosine similarity of the critics' action gradients (the TD3 runs of Fig. 4)"


def runs(scale: str, envs: list[str]) -> list[sweep.Run]:
    return sweep.grid("td3", "critic", CRITICS, envs, FLAGS[scale], OVERRIDES[scale])


def gradient_report(args, folder: str, runs: list[sweep.Run]) -> sweep.Report:
    """Fig. 3: the critic-gradient cosine similarity over the runs' snapshots."""
    out_dir = os.path.join(args.out, f"fig3_{args.scale}")
    paths = [f"--run={os.path.join(folder, run.name)}" for run in runs]
    last = GRADIENT_LAST_STEP[args.scale]
    limit = [] if last is None else [f"--last_step={last}"]
    command = ["-m", "hyperjax.experiments.gradient_accuracy", *paths, *limit, f"--out={out_dir}"]
    return sweep.Report(out_dir, command, FIG3)


def note(args, envs: list[str]) -> str:
    flags = " ".join(FLAGS[args.scale])
    shrunk = f"; sa_hyper and as_hyper with --critic_overrides='{SHRUNK}'" if OVERRIDES[args.scale] else ""
    return f"TD3 on {', '.join(envs)}, critics {', '.join(CRITICS)}: {flags}{shrunk}."


def main():
    args = sweep.figure_parser(__doc__, "fig4", ENVS).parse_args()
    envs = sweep.env_list(args, ENVS)
    folder, todo = sweep.sweep_dir(args, "fig4"), runs(args.scale, envs)
    reports = [sweep.plot(folder, os.path.join(args.out, f"fig4_{args.scale}")), gradient_report(args, folder, todo)]
    sys.exit(sweep.figure(args, "fig4", todo, folder, reports, TITLE, note(args, envs)))


if __name__ == "__main__":
    main()
