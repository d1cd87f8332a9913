"""The runner's calls stay near their target length when the cost of a step changes (updates begin)."""

import dataclasses
import os
import time

import jax
import jax.numpy as jnp
import pytest

from hyperjax.agents import base, registry
from hyperjax.experiments import runner
from tests.test_registry import CountConfig, _count_trainer

RANDOM_STEP_S, UPDATE_STEP_S, FIRST_UPDATE = 1e-4, 1e-2, 3000  # updates cost 100x a random-action step


def _register(monkeypatch, make_trainer, first_update: int = 0) -> None:
    """Registers the toy counting algorithm as ``count`` with ``make_trainer`` (a ``_count_trainer``
    variant) for this test."""
    algorithm = base.Algorithm(
        name="count",
        config=CountConfig,
        make_trainer=make_trainer,
        first_update=lambda config: first_update,
        check=lambda config, setting: None,
        run_name=lambda config: "count",
        presets={"paper": {}},
    )
    monkeypatch.setitem(registry.ALGORITHMS, "count", algorithm)


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

    _register(monkeypatch, slow_trainer, first_update=FIRST_UPDATE)
    monkeypatch.setattr(runner, "CALL_SECONDS", 0.2)
    run = runner.RunConfig(env="pendulum", total_steps=3300, eval_every=3300, checkpoint_every=3300, eval_episodes=1)
    runner.run("count", dataclasses.replace(run, logdir=str(tmp_path / "c")), CountConfig(), False)
    assert any(step + n == FIRST_UPDATE for step, n, _ in calls), calls  # a call ends where updates begin
    longest = max(seconds for _, _, seconds in calls[1:])
    # sized from the random phase, the call after it would take 100x its target (20 s)
    assert longest < 5 * 0.2, calls


STEP_S, BEATS = 0.4, 8  # a host-stepped toy: each step 0.4 s of host work, beating 8 times


@pytest.mark.parametrize("delay", [0.2, 0.5])  # a Ctrl-C before the call's first step ends, or after it
def test_a_host_stepped_call_shows_progress_and_stops_at_a_heartbeat(tmp_path, monkeypatch, capfd, delay):
    """A call of many slow host steps (as MAML's and PEARL's on MuJoCo's C engine) prints what it does
    every BEAT_SECONDS and stops within one heartbeat of a Ctrl-C, checkpointed after its last whole
    step; --resume then ends where an uninterrupted run does."""
    import os
    import signal
    import threading

    from hyperjax.train import checkpoint
    from hyperjax.train import trainer as trainer_lib

    started, stopped_at = [], []

    def host_trainer(config, setting):
        trainer = _count_trainer(config, setting)
        heartbeat = trainer_lib.Heartbeat()

        def run_chunk(state, step, num_steps):
            started.append(time.perf_counter())
            metrics = None
            for i in range(num_steps):
                for b in range(BEATS):
                    time.sleep(STEP_S / BEATS)
                    if heartbeat.beat(f"step {step + i}: host work {b + 1}/{BEATS}"):
                        stopped_at.append(time.perf_counter())
                        raise trainer_lib.CallStopped(state, i, metrics)
                state, metrics = trainer.run_chunk(state, step + i, 1)
            return state, metrics

        return trainer._replace(run_chunk=run_chunk, heartbeat=heartbeat)

    _register(monkeypatch, host_trainer)
    monkeypatch.setattr(runner, "CALL_SECONDS", 2.0)
    monkeypatch.setattr(runner, "BEAT_SECONDS", 0.3)
    run = runner.RunConfig(
        env="pendulum", total_steps=20, eval_every=20, checkpoint_every=20, eval_episodes=1,
        logdir=str(tmp_path / "c"),
    )  # fmt: skip

    def interrupt():  # a Ctrl-C into the second call (the first has made the stops graceful)
        while len(started) < 2:
            time.sleep(0.01)
        time.sleep(delay)
        sent.append(time.perf_counter())
        os.kill(os.getpid(), signal.SIGINT)

    sent = []
    threading.Thread(target=interrupt, daemon=True).start()
    with pytest.raises(runner.Interrupted) as stop:
        runner.run("count", run, CountConfig(), True)
    err = capfd.readouterr().err
    assert stopped_at and stopped_at[0] - sent[0] < STEP_S / BEATS + 0.1  # acted on at the next heartbeat
    assert "  ... step " in err and ": host work " in err  # progress within the calls
    steps = checkpoint.manager(os.path.join(run.logdir, "checkpoints")).all_steps()
    assert max(steps) == stop.value.step > 0  # checkpointed after the last whole step, then stopped

    result = runner.run("count", dataclasses.replace(run, resume=True), CountConfig(), False)
    assert result["step"] == 20 and float(result["returns"][0]) == 20.0  # as an uninterrupted run ends


@pytest.mark.parametrize("partial", [True, False])
def test_a_stop_within_a_step_replaces_that_steps_checkpoint(tmp_path, monkeypatch, partial):
    """A call from a checkpointed step, stopped before its first step ended with part of that step in
    its state (PEARL's native path stopped in an iteration's gradient steps), checkpoints that state in
    place of the step's checkpoint: nothing done is lost. Without a part, the checkpoint stands."""
    from hyperjax.train import checkpoint
    from hyperjax.train import trainer as trainer_lib

    def stopping_trainer(config, setting):
        trainer = _count_trainer(config, setting)

        def run_chunk(state, step, num_steps):
            half_done = {**state, "total": state["total"] + 0.5}  # half of step `step + 1`
            raise trainer_lib.CallStopped(half_done if partial else state, 0, None, partial=partial)

        return trainer._replace(run_chunk=run_chunk, heartbeat=trainer_lib.Heartbeat())

    run = runner.RunConfig(
        env="pendulum", total_steps=2, eval_every=2, checkpoint_every=2, eval_episodes=1, logdir=str(tmp_path / "c")
    )
    _register(monkeypatch, _count_trainer)
    runner.run("count", run, CountConfig(), False)  # checkpoint 2: total 2
    _register(monkeypatch, stopping_trainer)
    with pytest.raises(runner.Interrupted) as stop:
        runner.run("count", dataclasses.replace(run, total_steps=4, resume=True), CountConfig(), False)
    assert stop.value.step == 2
    mngr = checkpoint.manager(os.path.join(run.logdir, "checkpoints"))
    assert mngr.all_steps() == [2]
    abstract = {"total": jax.ShapeDtypeStruct((), jnp.float32), "key": jax.ShapeDtypeStruct((2,), jnp.uint32)}
    assert float(checkpoint.restore(mngr, 2, abstract)["total"]) == (2.5 if partial else 2.0)
