"""experiments/sweep.py: resumable sweeps, on a fake entry point that writes what a run writes
(config.json, metrics.csv, checkpoints/) and counts its starts; one real (slow) pendulum sweep."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from experiments import fig4, sweep

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A run of --total_steps in steps of --eval_every: a metrics row and a checkpoint per step; refuses
# to start over a checkpointed folder without --resume, as the runner does. --crash_at=N exits 3 at
# step N (not when resuming); --sleep=S waits S seconds per step; SIGTERM checkpoints and exits 130.
FAKE = """
import json, os, signal, sys, time
args = dict(a[2:].split("=", 1) if "=" in a else (a[2:], "") for a in sys.argv[1:])
with open(os.environ["FAKE_STARTS"], "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
logdir, total, every = args["logdir"], int(args["total_steps"]), int(args.get("eval_every", 1))
ckpt, metrics = os.path.join(logdir, "checkpoints"), os.path.join(logdir, "metrics.csv")
has_run = os.path.isdir(ckpt) and bool(os.listdir(ckpt))
if has_run != ("resume" in args):
    sys.exit("error: resume mismatch")
os.makedirs(ckpt, exist_ok=True)
step = max(int(s) for s in os.listdir(ckpt)) if has_run else 0
with open(os.path.join(logdir, "config.json"), "w") as f:
    json.dump({"run.total_steps": total}, f)
rows = open(metrics).read().splitlines()[: 1 + step // every + 1] if has_run else ["step,return_mean", "0,0.0"]
open(metrics, "w").write("\\n".join(rows) + "\\n")
while step < total:
    if stop:
        sys.exit(130)
    if "crash_at" in args and "resume" not in args and step == int(args["crash_at"]):
        print(f"boom at step {step}", flush=True)
        sys.exit(3)
    time.sleep(float(args.get("sleep", 0)))
    step += every
    os.makedirs(os.path.join(ckpt, str(step)))
    with open(metrics, "a") as f:
        f.write(f"{step},{float(step)}\\n")
print("done", flush=True)
"""


@pytest.fixture
def fake(tmp_path, monkeypatch):
    (tmp_path / "fake_entry.py").write_text(FAKE)
    starts = tmp_path / "starts.txt"
    monkeypatch.setenv("FAKE_STARTS", str(starts))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), ROOT]))

    def started() -> list[list[str]]:
        return [json.loads(line) for line in starts.read_text().splitlines()] if starts.exists() else []

    return started


def _runs(*extra_c: str) -> list[sweep.Run]:
    flags = ("--total_steps=4", "--eval_every=2")
    return [
        sweep.Run("env/a", "fake", flags, module="fake_entry"),
        sweep.Run("env/b", "fake", flags, module="fake_entry"),
        sweep.Run("env/c", "fake", (*flags, *extra_c), module="fake_entry"),
    ]


def _logdir(cmd: list[str]) -> str:
    return next(a for a in cmd if a.startswith("--logdir=")).split("/")[-1]


def test_interrupted_sweep_resumes_without_redoing_finished_runs(tmp_path, fake, capsys):
    folder = str(tmp_path / "sweep")
    runs = _runs("--crash_at=2")

    assert sweep.run_sweep(runs, folder, "cpu", dry_run=True) == 0
    out = capsys.readouterr().out
    assert "[new] env/a" in out and "--logdir=" in out
    assert fake() == [] and not os.path.exists(folder), "--dry_run launches and writes nothing"

    assert sweep.run_sweep(runs, folder, "cpu", parallel=2) == 1  # c crashes at step 2
    err = capsys.readouterr().err
    assert "FAILED env/c: exit code 3; last log line: boom at step 2" in err
    assert sorted(_logdir(c) for c in fake()) == ["a", "b", "c"]
    assert [sweep.status(r, folder) for r in runs] == ["done", "done", "resume"]
    assert (tmp_path / "sweep" / "env" / "c.log").read_text().strip().endswith("boom at step 2")

    assert sweep.run_sweep(runs, folder, "cpu", dry_run=True) == 0
    out = capsys.readouterr().out
    assert "[done] env/a" in out and "[done] env/b" in out
    assert "[resume] env/c" in out and out.strip().endswith("--resume")
    assert len(fake()) == 3

    assert sweep.run_sweep(runs, folder, "cpu", parallel=2) == 0  # only c, with --resume
    assert len(fake()) == 4 and _logdir(fake()[-1]) == "c" and fake()[-1][-1] == "--resume"
    assert sweep.reached(os.path.join(folder, "env", "c"), runs[2].flags)

    assert sweep.run_sweep(runs, folder, "cpu") == 0  # all done: nothing starts
    assert len(fake()) == 4

    # a longer --total_steps makes a finished run resumable again
    longer = [sweep.Run("env/a", "fake", ("--total_steps=6", "--eval_every=2"), module="fake_entry")]
    assert sweep.status(longer[0], folder) == "resume"


def test_sweep_json_records_commands_and_versions(tmp_path, fake):
    folder = str(tmp_path / "sweep")
    runs = _runs("--crash_at=2")
    sweep.run_sweep(runs, folder, "cpu")
    sweep.run_sweep(runs, folder, "cpu")
    record = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert (tmp_path / "sweep" / "SCALE").read_text().strip() == "cpu"
    assert record["scale"] == "cpu" and record["date"] and record["cpu"]
    assert {"python", "jax", "jaxlib", "flax", "optax", "brax", "mujoco"} <= set(record["versions"])
    assert "cpu" in record["device"].lower()
    assert record["git_commit"] is None or len(record["git_commit"]) == 40
    by_name = {r["name"]: r for r in record["runs"]}
    assert by_name["env/a"]["status"] == "done"
    assert by_name["env/c"]["status"] == "resume" and by_name["env/c"]["exit_code"] == 0
    assert by_name["env/c"]["command"].endswith(f"--logdir={folder}/env/c --resume")
    assert "-m fake_entry --total_steps=4 --eval_every=2 --crash_at=2" in by_name["env/c"]["command"]
    (first,) = record["previous"]  # the first launch, its failure included
    assert [r["status"] for r in first["runs"]] == ["new", "new", "new"]
    assert {r["name"]: r["exit_code"] for r in first["runs"]} == {"env/a": 0, "env/b": 0, "env/c": 3}


def test_sigterm_stops_the_runs_and_the_same_sweep_resumes_them(tmp_path, fake):
    folder = str(tmp_path / "sweep")
    script = (
        "import sys; from experiments import sweep; "
        "runs = [sweep.Run('slow', 'fake', ('--total_steps=200', '--sleep=0.1'), module='fake_entry')]; "
        f"sys.exit(sweep.run_sweep(runs, {folder!r}, 'cpu'))"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    deadline = time.time() + 30
    while not os.path.exists(os.path.join(folder, "slow", "checkpoints", "2")) and time.time() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 130
    record = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert record["interrupted"] and record["runs"][0]["exit_code"] == 130
    run = sweep.Run("slow", "fake", ("--total_steps=200",), module="fake_entry")
    assert sweep.status(run, folder) == "resume"
    assert len(fake()) == 1


def test_fig4_cpu_commands_are_the_recorded_ones():
    sa_hyper, as_hyper, mlp = fig4.runs("cpu", ["hopper"])
    common = (
        "--num_seeds=3 --seed=0 --total_steps=30000 --eval_every=5000 --eval_episodes=5 --checkpoint_every=5000 "
        "--snapshot_every=10000 --buffer_size=100000"
    ).split()
    shrunk = '--critic_overrides={"latent_widths": [64, 128, 256], "hidden_sizes": [64]}'
    assert sa_hyper.flags == ("--env=hopper", "--critic=sa_hyper", *common, shrunk)
    assert as_hyper.flags == ("--env=hopper", "--critic=as_hyper", *common, shrunk)
    assert mlp.flags == ("--env=hopper", "--critic=mlp", *common)
    assert [r.name for r in (sa_hyper, as_hyper, mlp)] == ["hopper/sa_hyper", "hopper/as_hyper", "hopper/mlp"]
    assert mlp.command("runs/fig4_cpu", resume=True)[-2:] == ["--logdir=runs/fig4_cpu/hopper/mlp", "--resume"]


@pytest.mark.slow
def test_real_sweep_resumes_a_sac_run(tmp_path):
    """A pendulum SAC run stopped at 200 steps is finished by the sweep with --resume."""
    folder = str(tmp_path / "sweep")
    tiny = ("--env=pendulum", "--critic=mlp_small", "--eval_every=100", "--eval_episodes=1", "--checkpoint_every=100")
    tiny += ("--buffer_size=1000", "--seed=0")
    first = [sweep.Run("pendulum/mlp_small", "sac", (*tiny, "--total_steps=200"))]
    assert sweep.run_sweep(first, folder, "cpu") == 0
    second = [sweep.Run("pendulum/mlp_small", "sac", (*tiny, "--total_steps=300"))]
    assert sweep.status(second[0], folder) == "resume"
    assert sweep.run_sweep(second, folder, "cpu") == 0
    assert sweep.status(second[0], folder) == "done"
