"""Smoke test of the benchmark suite's machinery (no timing assertions: timing lives in
benchmarks/)."""

from benchmarks import cases, flops, run


def test_smallest_case_runs_in_its_own_process():
    result = run.run_case({"case": "matmul", "n": 128, "repeats": 1})
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
    # PAPER_FACTS 9: one SA-Hyper Q forward on Ant (Brax dims) ~ 9.07M multiply-adds; ~47 GFLOP per SAC update
    assert abs(flops.q_forward_macs("sa_hyper", 27, 8) - 9_067_010) == 0
    assert 46e9 < flops.update_flops("sac", "sa_hyper", 27, 8, 256) < 47.5e9
