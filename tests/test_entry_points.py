"""Every entry point as careful as the SAC CLI: a bad input is ONE line on stderr (``error: ...``) naming
the problem, a non-zero exit code, no traceback, nothing created; no dependency noise at import; a
``MUJOCO_GL`` that cannot load ends only rendering.

The absl entry points' bad inputs run in one child process per entry point (``DRIVER``: the module
imported once, then each command line parsed by ``cli.parse_flags`` and run by its ``main``), so each
pays its imports once; the argparse ones (figure scripts, CPU sweeps) are light processes of their own.
"""

import csv
import json
import os
import subprocess
import sys

import pytest

from hyperjax.agents import registry as algorithms
from hyperjax.experiments import runner

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOISE = ("Failed to import warp", "Failed to import mujoco_warp", "not actively being maintained")
pytestmark = pytest.mark.filterwarnings(r"ignore:os\.fork\(\) was called:RuntimeWarning")

# imports an absl entry point once (its import output kept as "noise"), then runs each command line
DRIVER = """
import contextlib, importlib, io, json, sys
module, main_expr, cases = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
sys.argv = [module]
noise = io.StringIO()
with contextlib.redirect_stdout(noise), contextlib.redirect_stderr(noise):
    mod = importlib.import_module(module)
from absl import flags
from hyperjax.experiments import cli
if hasattr(mod, "define_flags"):
    mod.define_flags()
main = eval(main_expr)
results = []
for argv in cases:
    err = io.StringIO()
    flags.FLAGS.unparse_flags()
    code = 0
    with contextlib.redirect_stderr(err):
        try:
            cli.parse_flags([module, *argv])
            main([])
        except SystemExit as e:
            code = e.code
    results.append([code, err.getvalue()])
print("RESULTS " + json.dumps({"noise": noise.getvalue(), "results": results}))
"""


def _batch(module: str, cases: list[list[str]], main: str = "mod.main", **env) -> list[tuple[int, str]]:
    """``(exit code, stderr)`` of each command line of ``module`` run in one child process."""
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, module, main, json.dumps(cases)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env={**os.environ, **env},
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULTS ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    out = json.loads(lines[-1][len("RESULTS ") :])
    assert not any(n in out["noise"] + proc.stderr for n in NOISE), out["noise"]
    return [tuple(r) for r in out["results"]]


def _one_line(code: int, stderr: str, pattern: str) -> None:
    lines = stderr.strip().splitlines()
    assert code == 1 and len(lines) == 1, (code, stderr)
    assert lines[0].startswith("error: ") and "Traceback" not in stderr, stderr
    assert pattern in lines[0], (pattern, lines[0])


def _run_folder(path, algo: str = "td3", env: str = "pendulum", snapshots: bool = False) -> str:
    """A run folder as the runner leaves it before its first checkpoint: config.json (and an empty
    snapshots/ when asked)."""
    os.makedirs(path, exist_ok=True)
    algorithm = algorithms.get(algo)
    config = runner.config_dict(algo, runner.RunConfig(env=env, logdir=str(path)), algorithm.make_config())
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config, f)
    if snapshots:
        os.makedirs(os.path.join(path, runner.SNAPSHOTS))
    return str(path)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A file, runs without snapshots (none, an empty folder), a MAML run, and a read-only folder
    holding a TD3 run (a 1 MB tmpfs remounted read-only: root only, else None)."""
    tmp = tmp_path_factory.mktemp("entry")
    (tmp / "file").write_text("x")
    out = {
        "tmp": tmp,
        "file": str(tmp / "file"),
        "td3": _run_folder(tmp / "td3"),
        "empty_snapshots": _run_folder(tmp / "empty", snapshots=True),
        "maml": _run_folder(tmp / "maml", "maml", "point_nav"),
        "ro": None,
    }
    ro = tmp / "ro"
    ro.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(ro)], capture_output=True).returncode == 0:
        _run_folder(ro / "run")
        subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
        out["ro"] = str(ro)
    yield out
    if out["ro"]:
        subprocess.run(["umount", str(ro)], check=True)


def test_render_bad_inputs_under_a_mujoco_gl_that_cannot_load(folders):
    """MUJOCO_GL=nonsense: the import survives (only MuJoCo frames would need it); each bad input is one line."""
    f = folders
    cases = [
        ([f"--run={f['td3']}", f"--out={f['tmp']}"], "is a folder; give a file name, e.g. "),
        ([f"--run={f['td3']}", f"--out={f['file']}/v.mp4"], "cannot be created: "),
        ([f"--run={f['td3']}", f"--out={f['tmp']}/v.avi"], ".avi is no video format; valid: mp4, gif"),
        ([f"--run={f['td3']}", f"--out={f['tmp']}/v.gif", "--format=mp4"], "and --format=mp4 disagree"),
        ([f"--run={f['td3']}", "--episodes=abc"], "flag --episodes=abc: invalid literal"),
        ([f"--run={f['tmp']}/nowhere"], "no such folder"),
        ([f"--run={f['maml']}"], "a maml run has no agent to load here (algorithms with one: "),
        ([], "give --run="),
    ]
    if f["ro"]:
        cases += [
            ([f"--run={f['td3']}", f"--out={f['ro']}/v.mp4"], "is on a read-only file system"),
            ([f"--run={f['ro']}/run"], "videos folder " + f"{f['ro']}/run/videos cannot be written: "),
        ]
    results = _batch("hyperjax.experiments.render", [c for c, _ in cases], MUJOCO_GL="nonsense")
    for (_, pattern), (code, stderr) in zip(cases, results):
        _one_line(code, stderr, pattern)
    assert not os.path.exists(os.path.join(f["td3"], "videos")) and not os.path.exists(f"{f['tmp']}/v.avi")


def test_gradient_accuracy_bad_inputs(folders):
    f = folders
    out = f"{f['tmp']}/fig3"
    cases = [
        ([f"--run={f['td3']}", f"--out={f['file']}"], f"--out={f['file']} is a file; give a folder"),
        ([f"--run={f['td3']}", f"--out={out}"], "has no parameter snapshots; train it with --snapshot_every"),
        ([f"--run={f['empty_snapshots']}"], "has no parameter snapshots"),
        ([f"--run={f['maml']}"], "a maml run has no agent"),
        ([f"--run={f['td3']}", f"--run={f['td3']}"], "is given twice"),
        ([f"--run={f['td3']}", "--num_actions=1"], "--num_actions=1 is out of range: it must be >= 2"),
        ([f"--run={f['td3']}", "--num_states=0"], "--num_states=0 is out of range"),
        ([f"--run={f['td3']}", "--last_step=abc"], "flag --last_step=abc"),
        ([], "give at least one --run="),
    ]
    if f["ro"]:
        cases.append(([f"--run={f['td3']}", f"--out={f['ro']}/fig3"], "is on a read-only file system"))
    results = _batch("hyperjax.experiments.gradient_accuracy", [c for c, _ in cases])
    for (_, pattern), (code, stderr) in zip(cases, results):
        _one_line(code, stderr, pattern)
    assert not os.path.exists(out) and not os.path.exists(os.path.join(f["td3"], "gradient_accuracy.csv"))


def test_training_cli_under_a_bad_mujoco_gl(folders):
    """The SAC CLI imports and checks its flags with MUJOCO_GL=nonsense; only --video_every needs it.
    Integer lists name their flag; a seed count the memory cannot hold is refused before compiling."""
    logdir = f"--logdir={folders['tmp']}/sac"
    base = ["--env=pendulum", "--critic=mlp", "--total_steps=1000", "--eval_every=500", logdir]
    cases = [
        (["--actor_hidden_sizes=abc", *base], "--actor_hidden_sizes=abc is not a list of integers; give e.g. "),
        (["--num_seeds=100000000", *base], "--num_seeds=100000000: the training state needs "),
        (["--buffer_size=100000000000", *base], "one seed's training state needs "),
        (["--video_every=500", *base], "--video_every: MuJoCo cannot render headless here (MUJOCO_GL=nonsense"),
        (["--num_seeds=abc"], "flag --num_seeds=abc: invalid literal"),
        (["--no_such_flag=1"], "Unknown command line flag 'no_such_flag'"),
    ]
    main = "lambda argv: cli.main('sac', argv)"
    results = _batch("hyperjax.experiments.sac", [c for c, _ in cases], main, MUJOCO_GL="nonsense")
    for (_, pattern), (code, stderr) in zip(cases, results):
        _one_line(code, stderr, pattern)
    assert "at most " in results[1][1] and " seeds fit" in results[1][1]
    assert not os.path.exists(f"{folders['tmp']}/sac")


def test_plot_bad_inputs(folders, capsys):
    from hyperjax.experiments import plot

    f = folders
    cases = [
        ([f["td3"], f"--out={f['file']}"], "is a file; give a folder"),
        ([f["td3"], f"--out={f['tmp']}/p", "--reps=0"], "argument --reps: 0 must be >= 1"),
        ([f"{f['tmp']}/nowhere", f"--out={f['tmp']}/p"], "does not exist"),
        ([f"--out={f['tmp']}/p"], "the following arguments are required: paths"),
    ]
    if f["ro"]:
        cases.append(([f["td3"], f"--out={f['ro']}/p"], "is on a read-only file system"))
    for argv, pattern in cases:
        try:
            code = plot.main(argv)
        except SystemExit as e:
            code = e.code
        _one_line(code, capsys.readouterr().err, pattern)


def _light(*args: str) -> tuple[int, str]:
    proc = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=300, cwd=ROOT)
    return proc.returncode, proc.stderr


def test_figure_and_sweep_commands_refuse_bad_input_even_in_a_dry_run(folders):
    f = folders
    cases = [
        (["experiments.fig4", "--parallel=0"], "argument --parallel: 0 must be >= 1"),
        (["experiments.fig4", "--envs=,"], "--envs=, has an empty entry"),
        (["experiments.fig4", "--envs=hopper,hopper"], "--envs=hopper,hopper names hopper twice"),
        (["experiments.fig4", "--envs=hoper"], "--envs: unknown 'hoper'; valid: "),
        (["experiments.fig4", f"--logdir={f['file']}"], f"--logdir={f['file']} is a file; give a folder"),
        (["experiments.fig4", f"--out={f['file']}"], f"--out={f['file']} is a file; give a folder"),
        (["experiments.fig3", "--parallel=x"], "argument --parallel: 'x' is not an integer"),
        (["experiments.fig6a", f"--logdir={f['file']}/sub"], "cannot be created: "),
    ]
    for args, pattern in cases:
        code, stderr = _light(args[0], "--scale=cpu", "--dry_run", *args[1:])
        _one_line(code, stderr, pattern)
    for args, pattern in [
        (["experiments.maml_cpu", "--policies="], "--policies= has an empty entry"),
        (["experiments.maml_cpu", "--policies=hyper,foo"], "--policies: unknown 'foo'; valid: vanilla, context"),
        (["experiments.maml_cpu", "--report_only", f"--logdir={f['tmp']}/none"], "holds no runs yet"),
        (["experiments.pearl_cpu", "--models=mlp,mlp"], "--models=mlp,mlp names mlp twice"),
        (["experiments.pearl_cpu", "--parallel=0"], "argument --parallel: 0 must be >= 1"),
        (["experiments.pearl_cpu", "--report_only", f"--logdir={f['empty_snapshots']}"], "has evaluated yet"),
    ]:
        _one_line(*_light(*args), pattern)
    assert not os.path.exists(f"{f['tmp']}/none")


def test_benchmark_scripts_print_no_dependency_noise():
    code = "import benchmarks.env_speed; from hyperjax.envs import registry; "
    code += "registry.make('ant', backend='generalized', episode_length=3, preset='brax')"  # Brax's warning
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not any(n in proc.stdout + proc.stderr for n in NOISE), proc.stdout + proc.stderr


def test_gradient_accuracy_reuses_only_rows_of_the_same_settings(tmp_path):
    """The per-state CSV names each row's settings: other settings analyse the snapshots again, the
    summary shows only the rows of the command's settings, and an older unkeyed CSV is kept aside."""
    from hyperjax.analysis import gradient_accuracy as ga
    from hyperjax.experiments import gradient_accuracy as cli_ga

    run = _run_folder(tmp_path / "run")
    path = os.path.join(run, cli_ga.CSV_NAME)
    with open(path, "w", newline="") as f:  # an older CSV: no settings columns
        csv.writer(f).writerows([["step", "seed", "state", "cs"], [0, 0, 0, 0.5]])
    cli_ga.keep_unkeyed(path, log=lambda m: None)
    assert not os.path.exists(path) and os.path.exists(os.path.join(run, cli_ga.UNKEYED))

    paper, small = cli_ga.settings_key(ga.GradientConfig(), 0), cli_ga.settings_key(ga.GradientConfig(3, 4), 0)
    other_seed = cli_ga.settings_key(ga.GradientConfig(), 1)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(cli_ga.COLUMNS)
        for step, cs in ((0, 0.9), (100, 0.9)):  # paper settings: 0 and 100 done
            writer.writerow([*paper, step, 0, 0, cs, 1.0, 1.0, 5])
        writer.writerow([*small, 0, 0, 0, -0.9, 1.0, 1.0, 5])  # other sizes: 0 only
    steps = [0, 100, 200]
    assert cli_ga.pending(path, paper, steps) == [200]
    assert cli_ga.pending(path, small, steps) == [100, 200]
    assert cli_ga.pending(path, other_seed, steps) == [0, 100, 200]
    assert cli_ga.pending(path, other_seed, steps, last_step=100) == [0, 100]
    ((_, small_summary),) = cli_ga.summarise([run], small).items()  # one label: the run's critic
    assert list(small_summary["steps"]) == [0] and small_summary["cs"].tolist() == [-0.9]
    ((_, paper_summary),) = cli_ga.summarise([run], paper).items()
    assert paper_summary["cs"].tolist() == [0.9, 0.9]
