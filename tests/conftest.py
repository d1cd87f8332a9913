"""Test-session settings: a persistent XLA compilation cache shared by the session's tests and the
processes they start (fresh per session, so nothing carries over between sessions). Tests that
build the same programs again (a resumed run, a reference run, the CLI) load them instead of
compiling them; CI's time is mostly compilation."""

import os
import tempfile

from hyperjax.train import headless

# MuJoCo reads MUJOCO_GL once, at its first import (the test modules import it through Brax): a
# working headless backend first, for tests/test_render.py (unset if none works: those tests skip)
headless.choose()

import jax  # noqa: E402

_CACHE = tempfile.mkdtemp(prefix="hyperjax_test_xla_cache_")
os.environ["JAX_COMPILATION_CACHE_DIR"] = _CACHE  # inherited by subprocesses (CLI tests)
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0.5"
jax.config.update("jax_compilation_cache_dir", _CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def pytest_sessionfinish(session, exitstatus):
    del session, exitstatus
    import shutil

    shutil.rmtree(_CACHE, ignore_errors=True)
