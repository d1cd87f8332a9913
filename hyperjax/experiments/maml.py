"""MAML-TRPO (vanilla, context or hyper policy) on the paper's meta tasks.

The paper's experiment (400 iterations, 40 tasks x 20 episodes each):
  python -m hyperjax.experiments.maml --env=halfcheetah_vel --policy=hyper
A small CPU demo on 2-D point navigation:
  python -m hyperjax.experiments.maml --env=point_nav --policy=context --total_steps=50 --meta_batch=10
A training step is one meta-iteration; the curves show the test tasks' return after adaptation
(bold) and before it (dashed). Flags: RunConfig's and MAMLConfig's (hyperjax/agents/maml.py),
and --preset; see --helpfull.
"""

from absl import app

from hyperjax.experiments import quiet

with quiet.imports():  # drops mujoco-mjx's "Failed to import warp" lines, nothing else
    from hyperjax.experiments import cli

cli.define_for("maml")

if __name__ == "__main__":
    app.run(cli.main_for("maml"), flags_parser=cli.parse_flags)
