"""Resumable sweeps: a list of runs (name, entry point, flags) under one sweep folder, and the
command-line front end every figure script (``experiments/fig*.py``) shares.

Each run is ``python -m hyperjax.experiments.<entry> <flags> --logdir=<sweep dir>/<name>``. A run
whose metrics.csv already reaches its ``total_steps`` is skipped ("done"); one whose folder holds
checkpoints is relaunched with ``--resume`` ("resume"); any other is started ("new"). Runs go
``parallel`` at a time, each logging to ``<sweep dir>/<name>.log`` (appended: one header per start).
Before launching, ``<sweep dir>/sweep.json`` records the exact command lines, the scale, the date,
the git commit, the package versions, the device and the CPU (the record of earlier launches of
the same sweep is kept under ``previous``), and ``<sweep dir>/SCALE`` holds ``cpu`` or ``paper``.
A run that exits non-zero is reported (name, exit code, last line of its log) and the sweep exits
non-zero once the others have finished. Ctrl-C or SIGTERM stops the runs at their next training call
(they checkpoint), so the same command later resumes them.
"""

import argparse
import csv
import dataclasses
import datetime
import importlib.metadata
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

from hyperjax.experiments import checks  # standard library only: no JAX in the sweep's process

SCALES = ("paper", "cpu")
SCALE_LABELS = {"paper": "paper scale", "cpu": "CPU scale"}
PACKAGES = ("jax", "jaxlib", "flax", "optax", "brax", "mujoco", "mujoco-mjx", "jax-cuda12-plugin", "numpy")
POLL_SECONDS = 1.0


@dataclasses.dataclass(frozen=True)
class Run:
    """One run of a sweep.

    Attributes:
      name: its folder under the sweep folder, e.g. ``hopper/sa_hyper``.
      entry: the entry point, ``hyperjax.experiments.<entry>`` (``td3``, ``sac``, ``maml``, ...).
      flags: its flags, but ``--logdir`` (the sweep sets it) and ``--resume``.
      module: the module to run instead of ``hyperjax.experiments.<entry>`` (tests use a fake one).
      resumable: whether the entry point takes ``--resume`` (``maml_noise`` does not: restarted).
      done: ``rundir -> bool`` instead of the metrics.csv check, for entry points that write none.
    """

    name: str
    entry: str
    flags: tuple[str, ...]
    module: str | None = None
    resumable: bool = True
    done: Callable[[str], bool] | None = None

    def command(self, sweep_dir: str, resume: bool) -> list[str]:
        module = self.module or f"hyperjax.experiments.{self.entry}"
        cmd = [sys.executable, "-m", module, *self.flags, f"--logdir={os.path.join(sweep_dir, self.name)}"]
        return cmd + ["--resume"] if resume else cmd


def flag_value(flags: Sequence[str], name: str) -> str | None:
    """The value of the last ``--name=value`` in ``flags`` (None if absent)."""
    values = [f.split("=", 1)[1] for f in flags if f.startswith(f"--{name}=")]
    return values[-1] if values else None


def reached(rundir: str, flags: Sequence[str]) -> bool:
    """Whether the run's metrics.csv reaches its total steps: ``--total_steps`` in ``flags``, else
    ``run.total_steps`` of its config.json (the entry point's default)."""
    metrics, config = os.path.join(rundir, "metrics.csv"), os.path.join(rundir, "config.json")
    if not os.path.exists(metrics):
        return False
    total = flag_value(flags, "total_steps")
    if total is None:
        if not os.path.exists(config):
            return False
        with open(config) as f:
            total = json.load(f).get("run.total_steps")
    with open(metrics, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("step")]
    return bool(rows) and total is not None and int(float(rows[-1]["step"])) >= int(total)


def has_checkpoints(rundir: str) -> bool:
    path = os.path.join(rundir, "checkpoints")
    return os.path.isdir(path) and bool(os.listdir(path))


def status(run: Run, sweep_dir: str) -> str:
    """``done``, ``resume`` or ``new``."""
    rundir = os.path.join(sweep_dir, run.name)
    if run.done(rundir) if run.done else reached(rundir, run.flags):
        return "done"
    return "resume" if run.resumable and has_checkpoints(rundir) else "new"


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device() -> str:
    """JAX's backend and device kind, asked of a short child process (importing jax here would
    hold GPU memory the runs need)."""
    code = "import jax; d = jax.devices(); print(f'{jax.default_backend()}: {len(d)} x {d[0].device_kind}')"
    env = dict(os.environ, XLA_PYTHON_CLIENT_PREALLOCATE="false")
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    except (OSError, subprocess.SubprocessError) as e:
        return f"unknown ({e})"
    return out.stdout.strip().splitlines()[-1] if out.returncode == 0 and out.stdout.strip() else "unknown"


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


def provenance(scale: str) -> dict:
    """Where and with what a sweep ran: date, git commit, versions, device, CPU."""
    commit = _git("rev-parse", "HEAD")
    return {
        "scale": scale,
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": shlex.join([os.path.basename(sys.executable), *sys.argv]),
        "cwd": os.getcwd(),
        "git_commit": commit,
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")) if commit else None,
        "versions": versions(),
        "device": device(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "hostname": platform.node(),
    }


def write_record(sweep_dir: str, record: dict) -> list[dict]:
    """Writes ``sweep.json`` (earlier launches kept under ``previous``, returned) and ``SCALE``."""
    path = os.path.join(sweep_dir, "sweep.json")
    previous = []
    if os.path.exists(path):
        with open(path) as f:
            old = json.load(f)
        previous = old.pop("previous", []) + [old]
    with open(path, "w") as f:
        json.dump({**record, "previous": previous}, f, indent=2)
    with open(os.path.join(sweep_dir, "SCALE"), "w") as f:
        f.write(record["scale"] + "\n")
    return previous


def last_line(path: str) -> str:
    try:
        with open(path, errors="replace") as f:
            lines = [line.strip() for line in f if line.strip()]
    except OSError:
        return "(no log)"
    return lines[-1] if lines else "(empty log)"


def _stop(signum, frame):
    del frame
    raise KeyboardInterrupt(signal.Signals(signum).name)


def run_sweep(runs: Sequence[Run], sweep_dir: str, scale: str, parallel: int = 1, dry_run: bool = False) -> int:
    """Launches the runs not done yet, ``parallel`` at a time; 0 if every one succeeded.

    With ``dry_run``, prints each run's status and command and launches (and writes) nothing.
    """
    if scale not in SCALES:
        raise ValueError(f"scale {scale!r}; valid: {', '.join(SCALES)}")
    if parallel < 1:
        raise ValueError(f"parallel={parallel}: give at least 1")
    names = [run.name for run in runs]
    if len(set(names)) != len(names):
        raise ValueError(f"run names repeat: {names}")
    plan = []
    for run in runs:
        state = status(run, sweep_dir)
        plan.append((run, state, run.command(sweep_dir, resume=state == "resume")))
    counts = {s: sum(state == s for _, state, _ in plan) for s in ("done", "resume", "new")}
    print(
        f"sweep {sweep_dir} ({SCALE_LABELS[scale]}): {len(plan)} runs, {counts['done']} done, "
        f"{counts['resume']} to resume, {counts['new']} new",
        file=sys.stderr,
    )
    if dry_run:
        for run, state, cmd in plan:
            print(f"[{state}] {run.name}: {shlex.join(cmd)}")
        return 0
    os.makedirs(sweep_dir, exist_ok=True)
    record = provenance(scale)
    record["parallel"] = parallel
    record["runs"] = [{"name": r.name, "status": s, "command": shlex.join(c)} for r, s, c in plan]
    previous = write_record(sweep_dir, record)

    todo = [(run, cmd) for run, state, cmd in plan if state != "done"]
    running: dict[str, tuple[subprocess.Popen, float]] = {}
    results: dict[str, dict] = {}

    def reap() -> int:
        """Records the runs that ended; how many still run."""
        for name, (proc, start) in list(running.items()):
            if proc.poll() is not None:
                results[name] = {"exit_code": proc.returncode, "wall_s": round(time.time() - start, 1)}
                del running[name]
        return len(running)

    main_thread = threading.current_thread() is threading.main_thread()
    previous_term = signal.signal(signal.SIGTERM, _stop) if main_thread else None
    interrupted = False
    try:
        for run, cmd in todo:
            while reap() >= parallel:
                time.sleep(POLL_SECONDS)
            log_path = os.path.join(sweep_dir, f"{run.name}.log")
            os.makedirs(os.path.dirname(log_path), exist_ok=True)
            with open(log_path, "a") as log:
                log.write(f"=== {datetime.datetime.now().isoformat(timespec='seconds')}: {shlex.join(cmd)}\n")
                log.flush()
                running[run.name] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), time.time())
            print(f"started {run.name}: {shlex.join(cmd)}", file=sys.stderr)
        while reap():
            time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        # Ctrl-C reached the runs too (same process group); SIGTERM did not: pass it on. Either way
        # each run checkpoints at its next training call, and the same sweep resumes it later.
        print("sweep interrupted: stopping the runs (they checkpoint) ...", file=sys.stderr)
        interrupted = True
        for proc, _ in running.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc, _ in running.values():
            proc.wait()
        reap()
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous_term)

    for entry in record["runs"]:
        entry.update(results.get(entry["name"], {}))
    record["finished"] = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    record["interrupted"] = interrupted
    with open(os.path.join(sweep_dir, "sweep.json"), "w") as f:
        json.dump({**record, "previous": previous}, f, indent=2)
    if interrupted:
        return 130
    failed = {name: r for name, r in results.items() if r["exit_code"] != 0}
    for name, r in failed.items():
        log = last_line(os.path.join(sweep_dir, f"{name}.log"))
        print(f"FAILED {name}: exit code {r['exit_code']}; last log line: {log}", file=sys.stderr)
    print(f"sweep {sweep_dir}: {len(results) - len(failed)} runs succeeded, {len(failed)} failed", file=sys.stderr)
    return 1 if failed else 0


# The figure scripts' shared front end.


def refuse(message: str) -> None:
    """Bad input of a sweep command: one line on stderr (``error: ...``), exit code 1."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(1)


def figure_parser(doc: str, fig: str, envs: dict[str, Sequence[str]] | None = None) -> argparse.ArgumentParser:
    """``--scale``, ``--logdir``, ``--out``, ``--parallel``, ``--dry_run``, ``--report_only`` (and
    ``--envs`` when ``envs``, the default environments per scale, is given); a bad flag is one line."""
    parser = checks.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", required=True, choices=SCALES, help="paper: a GPU workload; cpu: reduced")
    parser.add_argument("--logdir", default=None, help=f"sweep folder; default runs/{fig}_<scale>")
    parser.add_argument("--out", default="experiments/results", help="figures go to <out>/<figure>_<scale>/")
    parser.add_argument(
        "--parallel", type=checks.positive, default=1, help="runs at once (each uses all cores or the GPU)"
    )
    parser.add_argument("--dry_run", action="store_true", help="print each run's status and command; launch nothing")
    parser.add_argument("--report_only", action="store_true", help="no training: figures from the runs that exist")
    if envs:
        defaults = "; ".join(f"{scale}: {','.join(names)}" for scale, names in envs.items())
        parser.add_argument("--envs", default=None, help=f"comma-separated environments (default {defaults})")
    return parser


_ENV_NAMES = """if True:
    import json
    from hyperjax.envs import registry
    print(json.dumps({"meta": list(registry.META_ENVS), "all": list(registry.ENVS)}))
"""


def known_envs() -> dict[str, tuple[str, ...]] | None:
    """The registry's environments, ``{"meta": meta tasks, "single": the others}``, asked of a short
    child process (the sweep's own process imports no JAX); None if that fails (each run then checks)."""
    try:
        out = subprocess.run([sys.executable, "-c", _ENV_NAMES], capture_output=True, text=True, timeout=300)
        names = json.loads(out.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None
    return {"meta": tuple(names["meta"]), "single": tuple(n for n in names["all"] if n not in names["meta"])}


def check_envs(text: str, flag: str, defaults: Sequence[str]) -> list[str]:
    """A comma list of environments of the kind ``defaults`` are (meta tasks or single tasks): one line
    and exit code 1 for an empty entry, a repeat, or a name the registry does not know."""
    try:
        names = checks.names(text, flag)
        known = known_envs()
        if known is None:
            return names
        valid = known["meta"] if set(defaults) <= set(known["meta"]) else known["single"]
        return checks.names(text, flag, valid)
    except ValueError as e:
        refuse(str(e))


def env_list(args: argparse.Namespace, envs: dict[str, Sequence[str]]) -> list[str]:
    """``--envs`` (checked: one line for an empty, repeated or unknown name), else the scale's."""
    if args.envs is None:
        return list(envs[args.scale])
    return check_envs(args.envs, "--envs", [name for names in envs.values() for name in names])


def sweep_dir(args: argparse.Namespace, fig: str) -> str:
    """``--logdir`` or ``runs/<fig>_<scale>``: one line and exit code 1 if it is a file or cannot be written."""
    folder = args.logdir or os.path.join("runs", f"{fig}_{args.scale}")
    try:
        checks.folder(folder, "--logdir")
    except ValueError as e:
        refuse(str(e))
    return folder


def write_note(out_dir: str, fig: str, title: str, note: str, folder: str) -> None:
    """``<out_dir>/provenance.md``: the scale-labelled title, the command, and where the runs are."""
    os.makedirs(out_dir, exist_ok=True)
    lines = [
        f"# {title}",
        "",
        note,
        "",
        f"Command: `{shlex.join(['python', '-m', f'experiments.{fig}', *sys.argv[1:]])}`",
        "",
        f"Runs: `{folder}` (their exact commands, versions, device and commit: `{folder}/sweep.json`).",
    ]
    with open(os.path.join(out_dir, "provenance.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


class Report(NamedTuple):
    """A figure made after training: ``action`` is the arguments of a python command (e.g. ``["-m",
    "hyperjax.experiments.plot", ...]``) or a function returning an exit code; ``title`` (default:
    the figure's) heads the ``provenance.md`` written into ``out_dir``."""

    out_dir: str
    action: list[str] | Callable[[], int]
    title: str | None = None


def existing_runs(argv: list[str]) -> list[str]:
    """``argv`` without the ``--run=<dir>`` whose folder holds no run yet (none left: unchanged)."""
    runs = [a for a in argv if a.startswith("--run=")]
    kept = [a for a in runs if os.path.exists(os.path.join(a.split("=", 1)[1], "config.json"))]
    if not kept or len(kept) == len(runs):
        return argv
    print(f"leaving out {len(runs) - len(kept)} run(s) not started yet", file=sys.stderr)
    return [a for a in argv if not a.startswith("--run=") or a in kept]


def figure(
    args: argparse.Namespace,
    fig: str,
    runs: Sequence[Run],
    folder: str,
    reports: Sequence[Report],
    title: str,
    note: str,
) -> int:
    """Trains ``runs`` in ``folder`` (unless ``--report_only``), then makes each report from the runs
    that exist (``--run=<dir>`` arguments of runs not started yet are left out), even when some runs
    failed; the exit code is non-zero then. Each report's out dir gets a scale-labelled provenance.md.
    Bad settings (``--out`` a file, a sweep that cannot run) are one line and exit code 1, found by a
    ``--dry_run`` too; Ctrl-C is one line and 130."""

    def work() -> int:
        checks.folder(args.out, "--out")
        return _figure(args, fig, runs, folder, reports, title, note)

    return checks.one_line_errors(work, "finished runs and checkpoints are kept; the same command goes on from there")


def _figure(args, fig, runs, folder, reports, title, note) -> int:
    code = 0
    if not args.report_only:
        code = run_sweep(runs, folder, args.scale, args.parallel, args.dry_run)
    for report in map(lambda r: Report(*r), reports):
        action = report.action
        what = f"{action.__name__} -> {report.out_dir}" if callable(action) else shlex.join([sys.executable, *action])
        if args.dry_run:
            print(f"[report] {what}")
            continue
        if not os.path.isdir(folder):
            print(f"no runs in {folder}: nothing to report", file=sys.stderr)
            return 1
        if callable(action):
            print(f"report: {what}", file=sys.stderr)
            returncode = action()
        else:
            cmd = [sys.executable, *existing_runs(action)]
            what = shlex.join(cmd)
            print(f"report: {what}", file=sys.stderr)
            returncode = subprocess.run(cmd).returncode
        if returncode:
            print(f"FAILED report {what}: exit code {returncode}", file=sys.stderr)
            code = code or returncode
            continue
        label = f"{report.title or title} ({SCALE_LABELS[args.scale]})"
        write_note(report.out_dir, fig, label, note, folder)
        print(f"{label}: {report.out_dir}", file=sys.stderr)
    return code


def grid(
    entry: str,
    variant: str,
    variants: Sequence[str],
    envs: Sequence[str],
    flags: Sequence[str],
    overrides: dict[str, str] | None = None,
    **run_fields,
) -> list[Run]:
    """One run per environment and variant, named ``<env>/<variant>``: ``--env=<env>
    --<variant>=<name> <flags>``, plus ``--critic_overrides=<overrides[name]>`` where given."""
    out = []
    for env in envs:
        for name in variants:
            run_flags = [f"--env={env}", f"--{variant}={name}", *flags]
            if overrides and name in overrides:
                run_flags.append(f"--critic_overrides={overrides[name]}")
            out.append(Run(f"{env}/{name}", entry, tuple(run_flags), **run_fields))
    return out


def plot(folder: str, out_dir: str) -> Report:
    """The curves, normalised scores, IQM and profiles of every run in ``folder`` (the plot command
    marks them "CPU scale" by the folder's ``SCALE``)."""
    return Report(out_dir, ["-m", "hyperjax.experiments.plot", folder, "--out", out_dir])
