"""A case in a fresh Python process (no shared compile caches or allocations), both sides.

Child: ``python -m benchmarks.cases '<json spec>'`` runs ``CASES[spec["case"]](**rest)`` and prints
``RESULT <json>``; ``python -m benchmarks.cases --serve '<json spec>'`` builds one of ``cases.CALLS``
(``(call, info)``: an update, hyperjax's or PyTorch's), prints ``READY <info json>``, then for each
line ``<n>`` on stdin times ``n`` calls and prints the seconds per call.
Parent: ``run_case`` (one case, one row, in any checkout: ``benchmarks.compare``) and ``Worker`` (a live
``--serve`` process: a ``timing.Timer`` that is stopped with SIGSTOP between its blocks, so its idle
thread pools can't spin beside the process being timed).
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping

from benchmarks import timing


def child_main(cases: Mapping[str, Callable[..., dict]], calls: Mapping[str, Callable], argv: list[str]) -> None:
    """The child side, ``benchmarks/cases.py``'s ``__main__``."""
    if argv[0] == "--serve":
        spec = json.loads(argv[1])
        call, info = calls[spec.pop("case")](**spec)
        print("READY " + json.dumps(info), flush=True)
        for line in sys.stdin:
            print(timing.timer(call, int(line))(), flush=True)
    else:
        spec = json.loads(argv[0])
        print("RESULT " + json.dumps(cases[spec.pop("case")](**spec)), flush=True)


def run_case(spec: dict, timeout: int = 1800, checkout: str | None = None) -> dict:
    """The row of one case run in a fresh process: ``spec`` with the case's result, or with its ``error``.
    ``checkout``: another checkout's hyperjax and benchmarks (default: this one)."""
    command = [sys.executable, "-m", "benchmarks.cases", json.dumps(spec)]
    env = None if checkout is None else {**os.environ, "PYTHONPATH": os.path.abspath(checkout)}
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=checkout, env=env)
    except subprocess.TimeoutExpired:
        return {**spec, "error": f"timed out after {timeout} s"}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return {**spec, **json.loads(line[len("RESULT ") :])}
    return {**spec, "error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}


class Worker:
    """A live ``--serve`` worker; ``info`` its READY line, ``timer(units)`` a ``timing.Timer`` of it.
    Raises RuntimeError (with the worker's last stderr line) if it fails; ``close()`` kills it."""

    def __init__(self, spec: dict):
        self.name, self.log = spec["case"], tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.cases", "--serve", json.dumps(spec)],
            # workers may share one accelerator: jax must not take 75% of its memory up front
            env={**os.environ, "XLA_PYTHON_CLIENT_PREALLOCATE": "false"},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        ready = next((line for line in self.proc.stdout if line.startswith("READY ")), None)
        if ready is None:
            self.close()
            raise RuntimeError(self._error())
        os.kill(self.proc.pid, signal.SIGSTOP)
        self.info = json.loads(ready[len("READY ") :])

    def _error(self) -> str:
        self.log.seek(0)
        return f"{self.name} worker: " + (self.log.read().strip().splitlines() or ["exited"])[-1]

    def timer(self, units: int) -> Callable[[], float]:
        def block() -> float:
            os.kill(self.proc.pid, signal.SIGCONT)
            try:
                self.proc.stdin.write(f"{units}\n")
                self.proc.stdin.flush()
                line = self.proc.stdout.readline()
            except BrokenPipeError:
                line = ""
            os.kill(self.proc.pid, signal.SIGSTOP)
            if not line:
                raise RuntimeError(self._error())
            return float(line)

        return block

    def close(self) -> None:
        self.proc.kill()  # SIGKILL ends a stopped process too
