"""The runner's calls stay near their target length when the cost of a step changes (updates begin)."""

import dataclasses
import time

from hyperjax.agents import base, registry
from hyperjax.experiments import runner
from tests.test_registry import CountConfig, _count_trainer

RANDOM_STEP_S, UPDATE_STEP_S, FIRST_UPDATE = 1e-4, 1e-2, 3000  # updates cost 100x a random-action step


def test_no_call_runs_far_past_its_target_when_updates_begin(tmp_path, monkeypatch):
    calls = []

    def slow_trainer(config, setting):
        trainer = _count_trainer(config, setting)

        def run_chunk(state, step, num_steps):
            updates = max(0, step + num_steps - max(step, FIRST_UPDATE))
            t0 = time.perf_counter()
            time.sleep((num_steps - updates) * RANDOM_STEP_S + updates * UPDATE_STEP_S)
            calls.append((step, num_steps, time.perf_counter() - t0))
            return trainer.run_chunk(state, step, num_steps)

        return trainer._replace(run_chunk=run_chunk)

    algorithm = base.Algorithm(
        name="count",
        config=CountConfig,
        make_trainer=slow_trainer,
        first_update=lambda config: FIRST_UPDATE,
        check=lambda config, setting: None,
        run_name=lambda config: "slow",
        presets={"paper": {}},
    )
    monkeypatch.setitem(registry.ALGORITHMS, "count", algorithm)
    monkeypatch.setattr(runner, "CALL_SECONDS", 0.2)
    run = runner.RunConfig(env="pendulum", total_steps=3300, eval_every=3300, checkpoint_every=3300, eval_episodes=1)
    runner.run("count", dataclasses.replace(run, logdir=str(tmp_path / "c")), CountConfig(), False)
    assert any(step + n == FIRST_UPDATE for step, n, _ in calls), calls  # a call ends where updates begin
    longest = max(seconds for _, _, seconds in calls[1:])
    # sized from the random phase, the call after it would take 100x its target (20 s)
    assert longest < 5 * 0.2, calls
