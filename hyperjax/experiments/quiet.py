"""Keeps a normal run's start quiet: drops exactly the known noise of dependencies (entry points only).

mujoco-mjx prints ``Failed to import warp: ...`` / ``Failed to import mujoco_warp: ...`` when the
optional NVIDIA Warp backend is absent (hyperjax does not use it), and Brax warns that its own
System pipelines are unmaintained each time it loads a model. Anything else still shows.
"""

import contextlib
import io
import re
import sys
import warnings

_PRINTED = re.compile(r"^Failed to import (mujoco_)?warp: ")
_WARNED = r"Brax System, piplines and environments are not actively being maintained"


class _LineFilter(io.TextIOBase):
    """A stdout stand-in that passes every line except the known noise."""

    def __init__(self, stream):
        self.stream, self.pending = stream, ""

    def write(self, text: str) -> int:
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            if not _PRINTED.match(line):
                self.stream.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        if self.pending and not _PRINTED.match(self.pending):
            self.stream.write(self.pending)
        self.pending = ""
        self.stream.flush()


@contextlib.contextmanager
def imports():
    """Wrap the entry point's imports: ``with quiet.imports(): from hyperjax.experiments import cli``."""
    line_filter = _LineFilter(sys.stdout)
    with contextlib.redirect_stdout(line_filter):
        yield
    line_filter.flush()


def warnings_off() -> None:
    """Silences the known dependency warnings for the rest of the process (called by ``cli.main``)."""
    warnings.filterwarnings("ignore", message=_WARNED, category=UserWarning)
