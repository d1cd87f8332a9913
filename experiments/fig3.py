"""The paper's Fig. 3 (cosine similarity of the critics' action gradients to the true Q gradient)
from Fig. 4's TD3 runs: trains whatever of the Fig. 4 sweep is not done yet (same runs, same folder,
default runs/fig4_<scale>), then runs only the gradient analysis into <out>/fig3_<scale>/:

  python -m experiments.fig3 --scale=cpu
  python -m experiments.fig3 --scale=paper     # a GPU workload

See experiments/fig4.py for the two scales.
"""

import sys

from experiments import fig4, sweep


def main():
    args = sweep.figure_parser(__doc__, "fig4", fig4.ENVS).parse_args()
    envs = sweep.env_list(args, fig4.ENVS)
    folder, todo = sweep.sweep_dir(args, "fig4"), fig4.runs(args.scale, envs)
    reports = [fig4.gradient_report(args, folder, todo)]
    sys.exit(sweep.figure(args, "fig3", todo, folder, reports, fig4.FIG3, fig4.note(args, envs)))


if __name__ == "__main__":
    main()
