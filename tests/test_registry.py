"""The algorithm registry, and the generic layers' ignorance of algorithms, critics and metrics."""

import ast
import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hyperjax.agents import base, maml, pearl, registry, sac, td3
from hyperjax.experiments import runner
from hyperjax.nn import critics
from hyperjax.train import logger, trainer

# the generic layers: the training floor, and the runner with its pieces
GENERIC = [
    "hyperjax/train",
    *(f"hyperjax/experiments/{m}.py" for m in ("runner", "calls", "evaluations", "films", "saves", "stops", "cli")),
]


def test_registered_algorithms():
    assert set(registry.ALGORITHMS) == {"sac", "td3", "maml", "pearl"}
    for name, algorithm in registry.ALGORITHMS.items():
        assert algorithm.name == name and dataclasses.is_dataclass(algorithm.config)
        assert algorithm.make_config() == algorithm.config()  # the defaults are the paper preset
        assert set(algorithm.run_defaults) <= {f.name for f in dataclasses.fields(runner.RunConfig)}
    for algorithm in (sac.ALGORITHM, td3.ALGORITHM):
        assert algorithm.run_name(algorithm.config(critic="d2rl")) == "d2rl"
    assert maml.ALGORITHM.run_name(maml.MAMLConfig(policy="context", second_order=True)) == "context_so"
    assert pearl.ALGORITHM.run_name(pearl.PEARLConfig(model="mlp", context="oracle")) == "mlp_oracle"
    assert sac.ALGORITHM.first_update(sac.SACConfig(batch_size=64)) == 65  # more than a batch
    assert td3.ALGORITHM.first_update(td3.TD3Config(start_steps=500)) == 501  # from t >= start_steps
    fujimoto = td3.ALGORITHM.make_config("sfujim", gamma=0.98)
    assert (fujimoto.batch_size, fujimoto.start_steps, fujimoto.gamma) == (256, 25_000, 0.98)
    with pytest.raises(ValueError, match=r"unknown td3 preset 'x'; valid: paper, sfujim"):
        td3.ALGORITHM.make_config("x")
    with pytest.raises(ValueError, match=r"unknown algorithm 'ppo'; valid: sac, td3, maml, pearl"):
        registry.get("ppo")


def _string_constants(path: str) -> set[str]:
    files = [path] if path.endswith(".py") else [os.path.join(path, f) for f in os.listdir(path) if f.endswith(".py")]
    found = set()
    for file in files:
        with open(file) as f:
            tree = ast.parse(f.read())
        found |= {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    return found


def test_generic_layers_name_no_algorithm_critic_or_metric():
    agent = sac.make_agent(sac.SACConfig(critic="mlp"), 3, 1)
    batch = jax.tree.map(lambda x: jnp.zeros((4, *x.shape)), runner_example_transition())
    metrics = jax.eval_shape(agent.update, agent.init(jax.random.key(0)), batch, jax.random.key(0), 0)[1]
    names = set(registry.ALGORITHMS) | set(critics.CRITICS) | set(metrics) | set(maml.METRICS) | set(maml.POLICIES)
    root = os.path.join(os.path.dirname(__file__), "..")
    for path in GENERIC:
        assert not names & _string_constants(os.path.join(root, path)), path


def runner_example_transition():
    from hyperjax.types import Transition

    return Transition(jnp.zeros(3), jnp.zeros(1), jnp.zeros(()), jnp.zeros(()), jnp.zeros(3))


@dataclasses.dataclass
class CountConfig:
    increment: float = 1.0


def _count_trainer(config: CountConfig, setting: trainer.Setting) -> trainer.Trainer:
    """A toy algorithm: its state counts env steps; it reports one metric of its own."""
    layout = trainer.SeedLayout(setting.num_seeds)
    init, init_program = layout.init(lambda key: {"total": jnp.zeros(()), "key": jax.random.key_data(key)})

    def chunk_one(state, start, num_steps):
        total = state["total"] + config.increment * num_steps
        return {**state, "total": total}, {"increment": config.increment + 0 * total, "finite": jnp.isfinite(total)}

    chunk = layout.program(chunk_one, (0, None, None), donate=True)
    evaluate = layout.program(lambda state, step: jnp.full((setting.eval_episodes,), state["total"]), (0, None))
    return trainer.Trainer(
        init=init,
        run_chunk=lambda state, step, n: (lambda s, m: (s, layout.to_seeds(m)))(*chunk(state, step, n)),
        evaluate=lambda state, step: layout.to_seeds(evaluate(state, step)),
        programs={"init": init_program, "chunk": chunk, "evaluate": evaluate},
        metric_names=("increment",),
    )


def test_the_runner_runs_any_registered_algorithm(tmp_path, monkeypatch):
    counter = base.Algorithm(
        name="count",
        config=CountConfig,
        make_trainer=_count_trainer,
        first_update=lambda config: 0,
        check=lambda config, setting: None,
        run_name=lambda config: f"inc{config.increment:g}",
        presets={"paper": {}},
    )
    monkeypatch.setitem(registry.ALGORITHMS, "count", counter)
    run = runner.RunConfig(
        env="pendulum", num_seeds=2, total_steps=3000, eval_every=1000, checkpoint_every=1000, eval_episodes=2
    )
    result = runner.run("count", dataclasses.replace(run, logdir=str(tmp_path / "c")), CountConfig(2.0), False)
    rows = logger.read_csv(os.path.join(result["logdir"], "metrics.csv"))
    assert [float(r["increment"]) for r in rows[1:]] == [2.0, 2.0, 2.0]  # its own metric, logged
    np.testing.assert_array_equal(result["returns"], [6000.0, 6000.0])
    assert runner.default_logdir("count", run, CountConfig(2.0)).endswith("count_pendulum_inc2_seed0")
