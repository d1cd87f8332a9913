"""Aggregation across runs (hyperjax.analysis.aggregate) and the plot CLI, on hand-written run folders."""

import json
import os

import numpy as np
import pytest

from hyperjax.analysis import aggregate
from hyperjax.experiments import plot

STEPS = [0, 5000, 10000]
# (env, critic) -> {seed: returns at STEPS}; the mean over seeds at the last step is round
RETURNS = {
    ("hopper", "mlp"): {0: [0, 50, 100], 1: [0, 100, 200], 2: [0, 150, 300]},
    ("hopper", "sa_hyper"): {0: [0, 200, 300], 1: [0, 250, 300], 2: [0, 300, 300]},
    ("walker", "mlp"): {0: [0, 400, 500], 1: [0, 400, 500], 2: [0, 400, 500]},
    ("walker", "sa_hyper"): {0: [0, 500, 1000], 1: [0, 450, 750], 2: [0, 550, 500]},
}


def write_run(folder, env, critic, seed, returns: dict[int, list[float]], steps=STEPS):
    """A run folder as the runner writes it: seeds ``seed, seed+1, ...`` with ``returns[seed+i]``."""
    os.makedirs(folder)
    num = len(returns)
    config = {"algo": "td3", "run.env": env, "run.seed": seed, "run.num_seeds": num, "run.total_steps": steps[-1]}
    config.update({"agent.critic": critic, "agent.critic_overrides": {}, "agent.hidden_sizes": [256, 256]})
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f)
    header = ["step", *[f"return_seed{i}" for i in range(num)], "return_mean", "critic_loss", "steps_per_sec", "wall_s"]
    lines = [",".join(header)]
    for t, step in enumerate(steps):
        values = [returns[seed + i][t] for i in range(num)]
        loss = "" if t == 0 else "0.5"  # empty cells where nothing was measured
        lines.append(",".join(map(str, [step, *values, np.mean(values), loss, "", 1.0 * t])))
    with open(os.path.join(folder, "metrics.csv"), "w") as f:
        f.write("\n".join(lines) + "\n")


@pytest.fixture
def sweep(tmp_path):
    """td3 on hopper and walker, critics mlp and sa_hyper, 3 seeds; hopper/sa_hyper split over two folders."""
    root = tmp_path / "sweep_cpu"
    for (env, critic), seeds in RETURNS.items():
        if (env, critic) == ("hopper", "sa_hyper"):
            write_run(root / "a" / f"{env}_{critic}", env, critic, 0, {0: seeds[0]})
            write_run(root / "b" / "deeper" / f"{env}_{critic}", env, critic, 1, {1: seeds[1], 2: seeds[2]})
        else:
            write_run(root / f"{env}_{critic}", env, critic, 0, seeds)
    return str(root)


def test_groups_found_and_pooled(sweep):
    groups = aggregate.load_groups([sweep])
    assert sorted(groups) == [("td3", env, critic) for env in ("hopper", "walker") for critic in ("mlp", "sa_hyper")]
    hyper = groups["td3", "hopper", "sa_hyper"]
    assert hyper.seeds == (0, 1, 2) and len(hyper.paths) == 2 and not hyper.duplicate_seeds
    np.testing.assert_array_equal(hyper.steps, STEPS)
    np.testing.assert_array_equal(hyper.returns, [RETURNS["hopper", "sa_hyper"][s] for s in range(3)])
    assert hyper.step_name == "env steps" and hyper.cpu_scale


def test_unfinished_run_and_duplicate_seed(tmp_path):
    write_run(tmp_path / "x", "hopper", "mlp", 0, {0: [1, 2, 3]})
    write_run(tmp_path / "y", "hopper", "mlp", 0, {0: [3, 4]}, steps=STEPS[:2])  # unfinished, same seed
    group = aggregate.load_groups([str(tmp_path)])["td3", "hopper", "mlp"]
    np.testing.assert_array_equal(group.steps, STEPS[:2])
    np.testing.assert_array_equal(group.returns, [[1, 2], [3, 4]])
    assert group.max_step == STEPS[-1] and group.duplicate_seeds == (0,) and not group.cpu_scale


def test_scale_file(tmp_path):
    write_run(tmp_path / "sweep" / "r", "hopper", "mlp", 0, {0: [1, 2, 3]})
    (tmp_path / "sweep" / "SCALE").write_text("cpu\n")
    assert aggregate.load_groups([str(tmp_path / "sweep")])["td3", "hopper", "mlp"].cpu_scale


def test_labels_rebuilt_from_config():
    assert aggregate.label_of({"algo": "maml", "agent.policy": "hyper", "agent.second_order": True}) == (
        "hyper_so",
        "iterations",
    )
    assert aggregate.label_of({"algo": "td3", "agent.critic": "sa_hyper", "agent.hidden_sizes": [64, 64]}) == (
        "sa_hyper",
        "env steps",
    )
    # a field this version does not know: the critic all the same
    assert aggregate.label_of({"algo": "sac", "agent.critic": "hyper", "agent.gone": 1})[0] == "hyper"


def test_means_and_bootstrap(sweep):
    groups = aggregate.load_groups([sweep])
    mean, low, high = aggregate.bootstrap_ci(groups["td3", "hopper", "mlp"].returns)
    np.testing.assert_array_equal(mean, [0, 100, 200])
    assert np.all(low <= mean) and np.all(mean <= high) and high[-1] - low[-1] > 0
    assert aggregate.final_mean(groups["td3", "walker", "sa_hyper"]) == 750
    # equal seeds: a zero-width interval
    mean, low, high = aggregate.bootstrap_ci(groups["td3", "walker", "mlp"].returns)
    np.testing.assert_array_equal(low, mean)
    np.testing.assert_array_equal(high, mean)
    # fixed seed: the same interval twice
    np.testing.assert_array_equal(
        aggregate.bootstrap_ci([1.0, 5.0, 2.0])[1], aggregate.bootstrap_ci([1.0, 5.0, 2.0])[1]
    )


def test_normalized_scores_and_steps_to_reach(sweep):
    groups = aggregate.load_groups([sweep])
    refs, missing = aggregate.baselines(groups, "mlp", "td3")
    assert refs == {"hopper": 200.0, "walker": 500.0} and missing == []
    base = groups["td3", "hopper", "mlp"]
    assert aggregate.normalize(base.returns[:, -1], refs["hopper"]).mean() == 1.0
    scores, envs, left_out = aggregate.score_matrices(groups, refs, "td3")
    assert envs == ["hopper", "walker"] and left_out == []
    np.testing.assert_array_equal(scores["mlp"], [[0.5, 1.0], [1.0, 1.0], [1.5, 1.0]])
    np.testing.assert_array_equal(scores["sa_hyper"], [[1.5, 2.0], [1.5, 1.5], [1.5, 1.0]])
    hyper = groups["td3", "hopper", "sa_hyper"]
    assert aggregate.steps_to_reach(hyper.steps, hyper.returns.mean(0), refs["hopper"]) == 5000
    assert aggregate.steps_to_reach(base.steps, base.returns.mean(0), refs["hopper"]) == 10000
    assert aggregate.steps_to_reach(base.steps, base.returns.mean(0), 201.0) is None


def test_iqm_of_known_matrix():
    # 8 scores: the IQM drops the 2 lowest and 2 highest and averages 3, 4, 5, 6
    scores = {"a": np.array([[1.0, 100.0], [3.0, 4.0], [5.0, 6.0], [-50.0, 7.0]]), "b": np.full((4, 2), 2.0)}
    points, intervals = aggregate.iqm(scores, reps=200)
    assert points["a"] == 4.5 and points["b"] == 2.0
    assert intervals["b"] == (2.0, 2.0)
    assert intervals["a"][0] <= 4.5 <= intervals["a"][1]
    assert aggregate.iqm(scores, reps=200)[1] == intervals  # seeded: reproducible
    profiles, cis = aggregate.performance_profiles(scores, np.array([0.0, 2.5]), reps=50)
    np.testing.assert_array_equal(profiles["b"], [1.0, 0.0])
    assert cis["a"].shape == (2, 2)


def test_cli_writes_its_files(sweep, tmp_path, capsys):
    out = tmp_path / "out"
    assert plot.main([sweep, "--out", str(out), "--reps", "50"]) == 0
    for name in ("curves.png", "normalized.png", "iqm.png", "profiles.png", "summary.md", "summary.json"):
        assert (out / name).stat().st_size > 0, name
    summary = json.loads((out / "summary.json").read_text())
    row = next(r for r in summary["groups"] if (r["env"], r["label"]) == ("hopper", "sa_hyper"))
    assert row["normalized_final"] == 1.5 and row["steps_to_baseline"] == 5000 and row["seeds"] == [0, 1, 2]
    assert summary["normalized"]["td3"]["iqm"]["mlp"] == 1.0
    text = (out / "summary.md").read_text()
    assert "TD3 (CPU scale)" in text and "| hopper | sa_hyper | 3 (0, 1, 2) |" in text and "IQM" in text


def test_cli_without_baseline_skips_normalized(sweep, tmp_path, capsys):
    out = tmp_path / "out"
    assert plot.main([sweep, "--out", str(out), "--baseline", "none"]) == 0
    assert "baseline label 'none' absent" in capsys.readouterr().err
    assert (out / "curves.png").exists() and (out / "summary.md").exists() and not (out / "iqm.png").exists()


@pytest.mark.parametrize("make_path", [lambda tmp: tmp / "missing", lambda tmp: tmp])
def test_cli_bad_input(tmp_path, capsys, make_path):
    assert plot.main([str(make_path(tmp_path)), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
