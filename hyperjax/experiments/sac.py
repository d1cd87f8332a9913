"""SAC with any critic on a Brax/MJX or pure-JAX environment.

The paper's experiment (1M steps, SA-Hyper critic, Ant):
  python -m hyperjax.experiments.sac --env=ant
A 10-minute CPU demo that learns:
  python -m hyperjax.experiments.sac --env=pendulum --critic=mlp --total_steps=10000 --eval_every=1000
Flags: every field of RunConfig (hyperjax/experiments/runner.py) and SACConfig
(hyperjax/agents/sac.py); see --helpfull.
"""

from absl import app

from hyperjax.agents import sac
from hyperjax.experiments import cli, runner

cli.define(runner.RunConfig, sac.SACConfig)

if __name__ == "__main__":
    app.run(lambda argv: cli.main("sac", argv))
