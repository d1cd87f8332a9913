"""The paper's Fig. 6(b): TD3 with the eight critics on the four MuJoCo tasks, scores normalised by
the MLP critic's; the same sweep as Fig. 6(a) (``fig6a.py``, SAC) with TD3:

  python -m experiments.fig6b --scale=cpu
  python -m experiments.fig6b --scale=paper     # a GPU workload

See experiments/fig6a.py for the two scales. Runs land in <logdir>/<env>/<critic> (default
runs/fig6b_<scale>); the curves, normalised bars and IQM in <out>/fig6b_<scale>/.
"""

from experiments import fig6a

if __name__ == "__main__":
    fig6a.main("td3", "fig6b", __doc__)
