"""Keeps a command's start quiet: drops exactly the known noise of dependencies (entry points and
benchmark scripts only), and keeps a bad ``MUJOCO_GL`` from ending commands that do not render.

mujoco-mjx prints ``Failed to import warp: ...`` / ``Failed to import mujoco_warp: ...`` when the
optional NVIDIA Warp backend is absent (hyperjax does not use it), and Brax warns that its own
System pipelines are unmaintained each time it loads a model. Anything else still shows.

- ``with quiet.imports(): ...`` around an entry point's imports: the filter, and ``mujoco`` loaded
  through ``headless.load_mujoco`` (rendering only where the command line asks for videos).
- ``quiet.install()``: the same noise off for the rest of the process, wherever mujoco-mjx is first
  imported (``benchmarks/__init__.py`` calls it, so every ``python -m benchmarks.<script>`` is quiet).
"""

import contextlib
import importlib.abc
import importlib.machinery
import io
import re
import sys
import warnings

from hyperjax.train import headless

_PRINTED = re.compile(r"^Failed to import (mujoco_)?warp: ")
_WARNED = r"Brax System, piplines and environments are not actively being maintained"
_NOISY_MODULES = ("mujoco.mjx.warp",)  # the module whose import prints _PRINTED


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
def _filtered():
    line_filter = _LineFilter(sys.stdout)
    with contextlib.redirect_stdout(line_filter):
        yield
    line_filter.flush()


class _QuietLoader(importlib.abc.Loader):
    """Runs a noisy module's import under the line filter (its module object is the real one)."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        with _filtered():
            self.loader.exec_module(module)


class _QuietFinder(importlib.abc.MetaPathFinder):
    """Finds ``_NOISY_MODULES`` as usual and wraps their loader in ``_QuietLoader``."""

    def find_spec(self, name, path, target=None):
        if name not in _NOISY_MODULES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def install() -> None:
    """The known noise off for the rest of the process: the warp lines wherever mujoco-mjx is first
    imported, Brax's warning whenever it is raised. Idempotent."""
    if not any(isinstance(f, _QuietFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietFinder())
    warnings_off()


@contextlib.contextmanager
def imports(render: bool | None = None):
    """Wrap the entry point's imports: ``with quiet.imports(): from hyperjax.experiments import cli``.

    ``render``: whether the command renders MuJoCo (``headless.load_mujoco``); None: only if its
    command line asks for videos (``--video_every``, ``headless.VIDEO_FLAG``)."""
    install()
    with _filtered():
        if render is None:
            render = headless.flagged(sys.argv, headless.VIDEO_FLAG)
        headless.load_mujoco(render)
        yield


def warnings_off() -> None:
    """Silences the known dependency warnings for the rest of the process (called by ``cli.main``)."""
    warnings.filterwarnings("ignore", message=_WARNED, category=UserWarning)
