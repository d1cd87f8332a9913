"""The paper's Fig. 7: PEARL (MLP vs hyper model) out of distribution, on HalfCheetah-Vel-Medium:
trained on goal velocities in [0, 2.5], tested on [2.5, 3]:

  python -m experiments.fig7 --scale=cpu
  python -m experiments.fig7 --scale=paper     # a GPU workload

The scales are Fig. 6(d)'s (experiments/fig6d.py): paper, 5 seeds and the entry point's defaults;
CPU scale, 1 seed, 30 iterations and experiments/pearl_cpu.py's reduced schedule. Runs land in
<logdir>/halfcheetah_vel_medium/<model>; the curves in <out>/fig7_<scale>/: ``return_mean`` is the
out-of-distribution test return, ``return_train_mean`` the in-distribution reference.
"""

from experiments import fig6d

ENVS = {"paper": ("halfcheetah_vel_medium",), "cpu": ("halfcheetah_vel_medium",)}

if __name__ == "__main__":
    fig6d.main("fig7", ENVS, __doc__, "Fig. 7: PEARL out of distribution (HalfCheetah-Vel-Medium), MLP vs hyper")
