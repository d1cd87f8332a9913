"""SAC with any critic on a Brax/MJX, pure-JAX or native-MuJoCo environment.

The paper's experiment (1M steps, SA-Hyper critic, Ant):
  python -m hyperjax.experiments.sac --env=ant
A 10-minute CPU demo that learns:
  python -m hyperjax.experiments.sac --env=pendulum --critic=mlp --total_steps=10000 --eval_every=1000
Flags: every field of RunConfig (hyperjax/experiments/runner.py) and SACConfig
(hyperjax/agents/sac.py), and --preset; see --helpfull.
"""

from absl import app

from hyperjax.experiments import quiet

with quiet.imports():  # drops mujoco-mjx's "Failed to import warp" lines, nothing else
    from hyperjax.experiments import cli

cli.define_for("sac")

if __name__ == "__main__":
    app.run(cli.main_for("sac"), flags_parser=cli.parse_flags)
