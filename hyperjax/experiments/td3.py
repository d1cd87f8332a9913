"""TD3 with any critic on a Brax/MJX or pure-JAX environment.

The paper's experiment (1M steps, SA-Hyper critic, Ant):
  python -m hyperjax.experiments.td3 --env=ant
Flags: every field of RunConfig (hyperjax/experiments/runner.py) and TD3Config
(hyperjax/agents/td3.py); see --helpfull.
"""

from absl import app

from hyperjax.agents import td3
from hyperjax.experiments import cli, runner

cli.define(runner.RunConfig, td3.TD3Config)

if __name__ == "__main__":
    app.run(lambda argv: cli.main("td3", argv))
