"""Smoke test of the benchmark suite's machinery (no timing assertions: timing lives in
benchmarks/)."""

import statistics

import pytest

from benchmarks import cases, flops, process, run, timing


def test_smallest_case_runs_in_its_own_process():
    result = process.run_case({"case": "matmul", "n": 128, "repeats": 1})
    assert "error" not in result, result
    assert result["gflops"] > 0


def test_update_case_and_table():
    update = cases.update_jax("sac", "mlp", repeats=1, inner=1)
    assert update["ms"] > 0 and update["xla_gflop"] > 0
    # the analytic model and XLA's own count agree on the MLP update to within 10%
    assert abs(update["analytic_gflop"] / update["xla_gflop"] - 1) < 0.1
    meta = {"suite": "smoke", "device": "cpu", "jax": "x", "jaxlib": "x", "date": "today", "machine": "m"}
    table = run.to_markdown(meta, [{"case": "matmul", "gflops": 100.0}, {"case": "update_jax", **update}])
    assert "| sac | mlp | 256 |" in table


def test_analytic_flops_match_paper_facts():
    # counted from the authors' code: one SA-Hyper Q forward on Ant (Brax dims) ~ 9.07M multiply-adds;
    # ~47 GFLOP per SAC update
    assert abs(flops.q_forward_macs("sa_hyper", 27, 8) - 9_067_010) == 0
    assert 46e9 < flops.update_flops("sac", "sa_hyper", 27, 8, 256) < 47.5e9


def test_practical_floor_finds_every_matmul_of_the_update():
    # the GEMMs that update_floor times are the compiled update's own: their FLOPs add up to XLA's count
    import jax
    import jax.numpy as jnp

    from hyperjax.agents import sac
    from hyperjax.train import trainer
    from hyperjax.types import Transition

    config = sac.SACConfig(critic="mlp", critic_overrides=dict(hidden_sizes=(64, 64)), actor_hidden_sizes=(32, 32))
    agent = sac.make_agent(config, obs_size=5, action_size=2)
    b = 64
    batch = Transition(jnp.zeros((b, 5)), jnp.zeros((b, 2)), jnp.zeros(b), jnp.ones(b), jnp.zeros((b, 5)))
    lowered = trainer.jit_program(agent.update).lower(agent.init(jax.random.key(0)), batch, jax.random.key(1), 0)
    compiled = lowered.compile()
    dots = flops.hlo_dots(compiled.as_text())
    gemm_flops = sum(flops.dot_flops(d) for d in dots)
    assert len(dots) >= 20  # forward and backward of 3-layer actor and twin critics
    assert abs(gemm_flops / compiled.cost_analysis()["flops"] - 1) < 0.15


def test_side_by_side_worker_protocol():
    # benchmarks.run times hyperjax and PyTorch in alternation through live workers like this one
    import json
    import subprocess
    import sys

    spec = json.dumps({"case": "update_jax", "algo": "td3", "critic": "mlp"})
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.cases", "--serve", spec],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        ready = next(line for line in proc.stdout if line.startswith("READY "))
        assert json.loads(ready[len("READY ") :])["critic"] == "mlp"
        for calls in ("2", "4"):  # whole TD3 delay cycles
            proc.stdin.write(calls + "\n")
            proc.stdin.flush()
            assert float(proc.stdout.readline()) > 0
    finally:
        proc.kill()


def test_side_by_side_rows():
    pytest.importorskip("torch")
    jax_row, torch_row = run.run_side_by_side(
        {"case": "update_side_by_side", "algo": "sac", "critic": "mlp", "rounds": 3, "inner": 1}
    )
    assert (jax_row["case"], torch_row["case"]) == ("update_jax", "update_torch")
    # the reported figures follow from the raw per-round times: one per round and framework,
    # ms the median of a framework's rounds, the speed-up the median of the paired ratios
    jax_ms, torch_ms = jax_row["round_ms"], torch_row["round_ms"]
    assert len(jax_ms) == len(torch_ms) == 3 and min(jax_ms + torch_ms) > 0
    assert jax_row["ms"] == pytest.approx(statistics.median(jax_ms), abs=0.01)
    assert torch_row["ms"] == pytest.approx(statistics.median(torch_ms), abs=0.01)
    ratios = sorted(t / j for t, j in zip(torch_ms, jax_ms))
    assert jax_row["speedup"] == pytest.approx(ratios[1], abs=0.01)
    assert jax_row["speedup_range"] == pytest.approx([ratios[0], ratios[-1]], abs=0.01)
    table = run.to_markdown({"suite": "s", "device": "cpu", "jax": "x", "jaxlib": "x", "date": "d", "machine": "m"},
                            [{"case": "matmul", "gflops": 100.0}, jax_row, torch_row])  # fmt: skip
    assert f"| {jax_row['speedup']:.2f}x (" in table


def test_gpu_suite_lists_its_cases_without_a_gpu():
    """The GPU suite's dry run: the cases it would run, with or without PyTorch."""
    with_torch = run.suite_cases("gpu", torch=True)
    assert {"tf32": True} in [{k: v for k, v in s.items() if k == "tf32"} for s in with_torch]
    without = run.suite_cases("gpu", torch=False)
    assert all(s["case"] != "update_side_by_side" and "tf32" not in s for s in without)
    trains = {(s["critic"], s["seeds"]) for s in without if s["case"] == "train"}
    assert {("sa_hyper", 1), ("sa_hyper", 5)} <= trains
    batches = {s["num_envs"] for s in without if s["case"] == "env_steps"}
    assert min(batches) == 1 and max(batches) == 4096


def test_alternate_flips_the_order_every_round():
    """Every timer runs once per round, in turn, the order reversed each round, after its warm-up."""
    calls = []
    timers = {name: (lambda name=name: calls.append(name) or 1.0) for name in "ab"}
    times = timing.alternate(timers, rounds=3, warmup=1)
    assert calls == list("ababbaab")
    assert times == {"a": [1.0] * 3, "b": [1.0] * 3}
    assert timing.paired_ratios([1.0, 2.0], [3.0, 3.0]) == [1.5, 3.0]


def test_env_timer_goes_on_from_its_last_state():
    """The env cases' timer: compiled once, per env step, each block stepping on from the last."""
    from hyperjax.envs import pendulum

    env = pendulum.Pendulum()
    compile_s, timer = cases.env_timer(env, num_envs=2, steps=5)
    assert compile_s > 0 and 0 < timer() < 1 and 0 < timer() < 1
