"""The Fig. 5 experiment (``hyperjax/analysis/maml_noise.py``, its CLI ``hyperjax.experiments.maml_noise``
and ``experiments/fig5.py``): bad input as one line, and a run that survives Ctrl-C/SIGTERM.

Resume is checked as the training runner's is (tests/test_training.py): a signal sent from inside the
run (from a wrapped compiled program, so it lands at a known call) stops it at the next boundary after
saving, and the resumed run ends with exactly the numbers of an uninterrupted one, including a
measurement stopped half way (its first resamples kept). Tiny point navigation throughout; the
programs compile once per session (the persistent cache in conftest.py serves the later runs and the
CLI's child process).
"""

import csv
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from hyperjax.agents import maml
from hyperjax.analysis import maml_noise
from hyperjax.experiments import rundir, runner
from hyperjax.train import checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = dict(meta_batch=2, fast_batch=2, num_train_tasks=4, num_test_tasks=2, hidden_sizes=(8,))
# iterations 2 and 4 measured, 3 trained; 4 resamples in calls of 2: a population takes two calls
SETTINGS = dict(env_name="point_nav", iterations=[2, 4], resamples=4, parallel=2, eval_episodes=2, seed=0)
# the same run as SETTINGS and TINY with the vanilla policy: the same programs
CLI_FLAGS = [
    "--env=point_nav", "--policies=vanilla", "--iterations=2,4", "--resamples=4", "--parallel=2",
    "--eval_episodes=2", "--meta_batch=2", "--fast_batch=2", "--num_train_tasks=4", "--num_test_tasks=2",
    "--hidden_sizes=8",
]  # fmt: skip


def _run(logdir, **kw):
    configs = {"vanilla": maml.MAMLConfig(policy="vanilla", **TINY)}
    return maml_noise.run(configs=configs, logdir=str(logdir), verbose=False, **{**SETTINGS, **kw})


def _signal_at(monkeypatch, factory: str, call: int, sig=signal.SIGINT, times: int = 1) -> list:
    """Wraps ``maml_noise.<factory>``'s compiled programs: on their ``call``-th call (counted over all of
    them) the process sends itself ``sig`` (``times`` times), then the call runs. Returns the call log."""
    real, calls = getattr(maml_noise, factory), []

    def make(*args):
        program = real(*args)

        def called(*a):
            calls.append(1)
            if len(calls) == call:
                for _ in range(times):
                    os.kill(os.getpid(), sig)
            return program(*a)

        return called

    monkeypatch.setattr(maml_noise, factory, make)
    return calls


def _csv(path) -> list[tuple]:
    with open(path, newline="") as f:
        return [(r["policy"], int(r["iteration"]), int(r["resample"]), r["return"]) for r in csv.DictReader(f)]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run's rows."""
    return _run(tmp_path_factory.mktemp("noise") / "reference")


def test_interrupted_twice_then_resumed_equals_uninterrupted_run(tmp_path, monkeypatch, reference):
    """SIGINT during a measurement's first call (iteration 2: 2 of 4 resamples), then SIGTERM during a
    training iteration (3): each saves and stops; --resume ends bitwise where the uninterrupted run did."""
    assert [(r["iteration"], r["resample"]) for r in reference] == [(i, j) for i in (2, 4) for j in range(4)]
    returns = np.array([r["return"] for r in reference])
    assert np.isfinite(returns).all() and len(set(returns[:4])) == len(set(returns[4:])) == 4  # each call its keys
    logdir = tmp_path / "stopped"
    stops, handler = runner.StopRequests, signal.getsignal(signal.SIGINT)
    with monkeypatch.context() as m:
        _signal_at(m, "make_resampled_returns", 1, signal.SIGINT)
        with pytest.raises(maml_noise.Interrupted, match=r"^SIGINT: vanilla stopped after iteration 1, 2 of 4 "):
            _run(logdir, stop_requests=stops)
    assert signal.getsignal(signal.SIGINT) is handler  # the handlers are put back
    mngr = checkpoint.manager(str(logdir / "checkpoints" / "vanilla"))
    assert mngr.all_steps() == [3]  # 1 training step + 2 resampled ones
    kept = _csv(logdir / "noise.csv")  # the half population survives, as computed
    assert kept == [("vanilla", 2, j, repr(reference[j]["return"])) for j in range(2)]
    with monkeypatch.context() as m:  # resumed: iteration 2's last call, then a signal in iteration 3
        _signal_at(m, "make_train_step", 1, signal.SIGTERM)
        with pytest.raises(maml_noise.Interrupted, match=r"^SIGTERM: vanilla stopped after iteration 3, saved"):
            _run(logdir, stop_requests=stops, resume=True)
    # iteration 2 completed (2 + 4 meta-steps), then iteration 3 (7)
    assert checkpoint.manager(str(logdir / "checkpoints" / "vanilla")).all_steps() == [6, 7]
    with pytest.raises(ValueError, match="already holds a maml_noise run .*; pass --resume"):
        _run(logdir)
    with monkeypatch.context() as m:  # the rest only: iteration 4's two calls
        steps, resampled = _signal_at(m, "make_train_step", 0), _signal_at(m, "make_resampled_returns", 0)
        rows = _run(logdir, resume=True)
    assert (len(steps), len(resampled)) == (0, 2)
    assert rows == reference  # every resample's return, exactly
    assert _csv(logdir / "noise.csv") == [("vanilla", r["iteration"], r["resample"], repr(r["return"])) for r in rows]
    assert _run(logdir, resume=True) == reference  # a finished run: restored, nothing recomputed


def test_ctrl_c_twice_during_a_save_stops_after_it_saved(tmp_path, monkeypatch, reference, two_ctrl_cs_in_first_save):
    """Two Ctrl-Cs while the first checkpoint is written wait for the write: the run stops with it complete."""
    logdir = tmp_path / "a"
    with pytest.raises(maml_noise.Interrupted, match=r"^SIGINT: vanilla stopped after iteration 2, saved"):
        _run(logdir, stop_requests=runner.StopRequests)
    assert two_ctrl_cs_in_first_save == [6]  # iteration 2's measurement (2 + 4 meta-steps), saved once
    assert checkpoint.manager(str(logdir / "checkpoints" / "vanilla")).all_steps() == [6]
    assert len(_csv(logdir / "noise.csv")) == 4
    monkeypatch.undo()  # the real checkpoint.save
    assert _run(logdir, resume=True) == reference


def test_resume_refuses_other_settings_and_skips_a_damaged_checkpoint(tmp_path, reference, capsys):
    logdir = tmp_path / "done"
    _run(logdir)
    with pytest.raises(checkpoint.CheckpointError, match=r"is of another config \(resamples: saved 4 vs now 6\)"):
        _run(logdir, resume=True, resamples=6)
    assert _run(logdir, resume=True, parallel=4) == reference  # a memory setting: not checked
    mngr = checkpoint.manager(str(logdir / "checkpoints" / "vanilla"))
    latest = mngr.latest_step()
    for root, _, files in os.walk(logdir / "checkpoints" / "vanilla" / str(latest)):
        for name in files:  # every file of the latest checkpoint cut short
            path = os.path.join(root, name)
            if os.path.getsize(path) > 16 and "structure" not in root and "config" not in root:
                with open(path, "r+b") as f:
                    f.truncate(os.path.getsize(path) // 2)
    rows = maml_noise.run(
        configs={"vanilla": maml.MAMLConfig(policy="vanilla", **TINY)}, logdir=str(logdir), resume=True,
        **SETTINGS,
    )  # fmt: skip
    assert f"skipped checkpoint {latest}" in capsys.readouterr().err
    assert rows == reference  # redone from the intact checkpoint before it
    assert _run(logdir, resume=True) == reference  # and the damaged one replaced: no warning now
    assert "skipped" not in capsys.readouterr().err


# One child process for the CLI: each command line parsed by cli.parse_flags and run by main, its exit code
# and stderr kept; the run cases signal themselves from a wrapped program, as _signal_at does.
DRIVER = """
import contextlib, io, json, os, signal, sys
cases = json.loads(sys.argv[1])
sys.argv = ["maml_noise"]
from hyperjax.experiments import maml_noise as entry
from hyperjax.analysis import maml_noise
from hyperjax.experiments import cli
from absl import flags
real = maml_noise.make_train_step
def signalling(*args):
    program = real(*args)
    def called(state):
        os.kill(os.getpid(), signal.SIGTERM)
        return program(state)
    return called
results = []
for argv, sigterm in cases:
    maml_noise.make_train_step = signalling if sigterm else real
    flags.FLAGS.unparse_flags()
    err, code = io.StringIO(), 0
    with contextlib.redirect_stderr(err):
        try:
            cli.parse_flags(["maml_noise", *argv])
            entry.main([])
        except SystemExit as e:
            code = e.code
    results.append([code, err.getvalue()])
print("RESULTS " + json.dumps(results))
"""


@pytest.fixture
def read_only(tmp_path):
    """A read-only folder: a tmpfs remounted read-only (root), else a folder without write permission."""
    ro = tmp_path / "ro"
    ro.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(ro)], capture_output=True)
    if mounted.returncode == 0:
        subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
    else:
        ro.chmod(0o555)
        if os.access(ro, os.W_OK):
            pytest.skip("no read-only folder: not root (no tmpfs) and permissions do not bind")
    yield str(ro)
    if mounted.returncode == 0:
        subprocess.run(["umount", str(ro)], check=True)


def test_cli_bad_inputs_are_one_line_and_a_sigterm_run_resumes(tmp_path, read_only, reference):
    """Each bad input: one line ``error: ...`` naming it, exit 1, no traceback, nothing created. A run
    stopped by SIGTERM: one line, exit 130, and --resume ends with the uninterrupted run's numbers."""
    (tmp_path / "file").write_text("x")
    fresh, run, held = tmp_path / "fresh", tmp_path / "run", tmp_path / "held"
    base = [*CLI_FLAGS, f"--logdir={fresh}"]
    bad = [
        (["--iterations="], "--iterations= is empty; give e.g. --iterations=50,150,300,450"),
        (["--iterations=abc"], "--iterations=abc is not a list of integers; give e.g. --iterations=50,150"),
        (["--iterations=5,,10"], "--iterations=5,,10 is not a list of integers"),
        (["--iterations=5,5"], "--iterations=5,5 names 5 twice"),
        (["--iterations=0,5"], "--iterations=0,5 is out of range: every entry must be >= 1"),
        (["--resamples=0"], "--resamples=0 is out of range: it must be >= 1"),
        (["--parallel=0"], "--parallel=0 is out of range"),
        (["--eval_episodes=-1"], "--eval_episodes=-1 is out of range"),
        (["--resamples=abc"], "flag --resamples=abc: invalid literal"),
        (["--env=ant"], "--env=ant is not valid; valid: point_nav, "),
        (["--policies="], "--policies= has an empty entry; give e.g. --policies=vanilla,context"),
        (["--policies=hyper,foo"], "--policies: unknown 'foo'; valid: vanilla, context, hyper"),
        (["--policies=hyper,hyper"], "--policies=hyper,hyper names hyper twice"),
        (["--meta_batch=0"], "--meta_batch=0 is out of range"),
        (["--hidden_sizes=abc"], "--hidden_sizes=abc is not a list of integers"),
        ([f"--logdir={tmp_path / 'file'}"], "is a file; give a folder"),
        ([f"--logdir={tmp_path / 'file'}/sub"], "cannot be created: "),
        ([f"--logdir={read_only}/sub"], "cannot be written: "),
        (["--resume"], f"--resume: no maml_noise run in {fresh}"),
        ([f"--logdir={held}"], f"{held} is in use by process {os.getpid()}"),
    ]
    cases = [([*base, *argv], False) for argv, _ in bad]
    # a run stopped by SIGTERM in its first training iteration, refused again without --resume, resumed
    run_flags = [*CLI_FLAGS, f"--logdir={run}"]
    cases += [(run_flags, True), (run_flags, False), ([*run_flags, "--resume"], False)]
    lock = rundir.Lock(str(held))
    try:
        proc = subprocess.run(
            [sys.executable, "-c", DRIVER, json.dumps(cases)], capture_output=True, text=True, timeout=600, cwd=ROOT
        )
    finally:
        lock.release()
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULTS ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    noise = ("Failed to import warp", "Failed to import mujoco_warp", "not actively being maintained")
    assert not any(n in proc.stdout + proc.stderr for n in noise), proc.stderr[-3000:]
    results = json.loads(lines[-1][len("RESULTS ") :])
    for (_, pattern), (code, stderr) in zip(bad, results):
        got = stderr.strip().splitlines()
        assert code == 1 and len(got) == 1 and got[0].startswith("error: "), (pattern, code, stderr)
        assert pattern in got[0] and "Traceback" not in stderr, (pattern, got[0])
    assert not fresh.exists() and sorted(os.listdir(held)) == [".lock"]
    (code, stopped), (code_again, again), (code_resumed, resumed) = results[len(bad) :]
    last = stopped.strip().splitlines()[-1]
    assert code == 130 and last == "SIGTERM: vanilla stopped after iteration 1, saved; continue with --resume", stopped
    assert "Traceback" not in stopped, stopped
    assert code_again == 1 and again.strip().startswith("error: ") and "pass --resume" in again, again
    assert code_resumed == 0, resumed
    assert _csv(run / "noise.csv") == [("vanilla", r["iteration"], r["resample"], repr(r["return"])) for r in reference]


def test_fig5_finished_check_never_raises(tmp_path):
    from experiments import fig5

    (tmp_path / "noise.csv").write_text("policy,iteration,resample,return\nvanilla,4,0,-1.0\nvanilla,x,1,2\n")
    for flags in (["--iterations="], ["--iterations=a,b"], ["--resamples=x"], ["--iterations=4", "--resamples=1"]):
        assert fig5.finished(flags)(str(tmp_path)) is False
    (tmp_path / "noise.csv").write_text("policy,iteration,resample,return\nvanilla,4,0,-1.0\n")
    assert fig5.finished(["--iterations=2,4", "--resamples=1"])(str(tmp_path)) is True
    assert fig5.finished(["--iterations=2,4", "--resamples=2"])(str(tmp_path)) is False
