"""PEARL with an MLP or a hypernetwork actor-critic on the paper's meta tasks.

The paper's experiment (400 iterations; the authors' config of each env: on the vel tasks 100
training and 30 test tasks, on the dir tasks the directions [-1, +1]; --preset=authors_task_counts
is the vel tasks' shipped runs, 2 training and 2 test tasks):
  python -m hyperjax.experiments.pearl --env=halfcheetah_vel --model=hyper
Out of distribution (train on goal velocities in [0, 2.5], test on [2.5, 3]):
  python -m hyperjax.experiments.pearl --env=halfcheetah_vel_medium --model=hyper
A small CPU demo on 2-D point navigation with four goals (about two minutes on 2 cores): the
training tasks' return (return_train_mean) rises from -8.5 to between -3.4 and -4.7 over iterations
10-30, where a policy blind to the goal cannot pass -5.9; new goals (the test tasks) stay near -8,
as four training goals are too few to generalise from:
  python -m hyperjax.experiments.pearl --env=point_nav --model=mlp --episode_length=20 --total_steps=30 \\
    --eval_every=10 --num_train_tasks=4 --num_test_tasks=4 --num_tasks_sample=2 --num_initial_steps=100 \\
    --num_steps_prior=40 --num_extra_rl_steps_posterior=40 --num_steps_per_eval=60 --num_train_steps=200 \\
    --meta_batch=4 --batch_size=64 --embedding_batch_size=32 --net_size=64 --buffer_size=2000 \\
    --gamma=0.9 --q_lr=1e-3 --v_lr=1e-3 --policy_lr=1e-3 --encoder_lr=1e-3 --kl_lambda=0.01
Where the physics runs: --backend=auto (the default) steps the MuJoCo tasks on MuJoCo's C engine on the
host when JAX has no accelerator (--backend=native: agents/pearl_host.py, the policy one jitted call per
env step for all envs, the gradient steps jitted as on MJX), and in XLA with MJX otherwise
(--backend=mjx: the whole iteration one program); the run header names the choice.
A training step is one iteration (collection, then --num_train_steps gradient steps); the curves
show the test tasks' last-trajectory return (bold), the first trajectory's, before any task
information (dashed), and training tasks' (dashed). --num_evals is oyster's num_evals (runs per
evaluation task; --eval_episodes is not read); --buffer_size is per task (at most 5,000,000
transitions over all training tasks). Flags: RunConfig's and PEARLConfig's (hyperjax/agents/pearl.py;
a preset takes the authors' values for --env), and --preset; see --helpfull.
"""

from absl import app

from hyperjax.experiments import quiet

with quiet.imports():  # drops mujoco-mjx's "Failed to import warp" lines, nothing else
    from hyperjax.experiments import cli

cli.define_for("pearl")

if __name__ == "__main__":
    app.run(cli.main_for("pearl"), flags_parser=cli.parse_flags)
