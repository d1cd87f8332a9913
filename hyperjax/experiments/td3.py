"""TD3 with any critic on a Brax/MJX, pure-JAX or native-MuJoCo environment.

The paper's experiment (1M steps, SA-Hyper critic, Ant):
  python -m hyperjax.experiments.td3 --env=ant
Flags: every field of RunConfig (hyperjax/experiments/runner.py) and TD3Config
(hyperjax/agents/td3.py), and --preset; see --helpfull.
"""

from absl import app

from hyperjax.experiments import quiet

with quiet.imports():  # drops mujoco-mjx's "Failed to import warp" lines, nothing else
    from hyperjax.experiments import cli

cli.define_for("td3")

if __name__ == "__main__":
    app.run(cli.main_for("td3"), flags_parser=cli.parse_flags)
