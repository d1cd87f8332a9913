"""Test-session settings.

A persistent XLA compilation cache shared by the session's tests, its worker processes (the suite
runs on two: setup.cfg) and the processes they start; fresh per session, so nothing carries over
between sessions. Tests that build the same programs again (a resumed run, a reference run, the CLI)
load them instead of compiling them: CI's time is mostly compilation. A size limit turns on JAX's
file lock, so two processes never write one entry at once.

The longest test files are handed out first, so that neither worker is left with one at the end.
"""

import os
import tempfile

import pytest

from hyperjax.train import headless

# MuJoCo reads MUJOCO_GL once, at its first import (the test modules import it through Brax): a
# working headless backend first, for tests/test_render.py (unset if none works: those tests skip)
headless.choose()

import jax  # noqa: E402

# the first process (pytest itself, before it starts its workers) makes the folder; the workers and
# the processes the tests start inherit it through the environment
_OWNER = "HYPERJAX_TEST_XLA_CACHE" not in os.environ
_CACHE = os.environ.setdefault("HYPERJAX_TEST_XLA_CACHE", tempfile.mkdtemp(prefix="hyperjax_test_xla_cache_"))
_LIMIT = str(8 << 30)  # bytes; far above what the suite writes (it only turns the lock on)
os.environ["JAX_COMPILATION_CACHE_DIR"] = _CACHE
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0.5"
os.environ["JAX_COMPILATION_CACHE_MAX_SIZE"] = _LIMIT
jax.config.update("jax_compilation_cache_dir", _CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
jax.config.update("jax_compilation_cache_max_size", int(_LIMIT))

# the files that take longest (about a minute or more on 2 cores), longest first; the rest follow in
# their usual order
LONGEST_FIRST = (
    "test_training.py",
    "test_pearl.py",
    "test_sharding.py",
    "test_paper_physics.py",
    "test_entry_points.py",
    "test_maml_noise.py",
)


def pytest_collection_modifyitems(session, config, items):
    del session, config
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: each file keeps its order


def pytest_sessionfinish(session, exitstatus):
    del session, exitstatus
    if _OWNER:
        import shutil

        shutil.rmtree(_CACHE, ignore_errors=True)


@pytest.fixture
def two_ctrl_cs_in_first_save(monkeypatch):
    """Makes the first ``checkpoint.save`` of the test start with two SIGINTs sent to this process
    (the second would raise KeyboardInterrupt inside orbax's writers), then write. Yields the steps
    saved, in order (``monkeypatch.undo()`` puts the real ``save`` back)."""
    import signal  # noqa: PLC0415

    from hyperjax.train import checkpoint  # noqa: PLC0415

    real_save, calls = checkpoint.save, []

    def save_under_fire(mngr, step, state, config, **kwargs):
        calls.append(step)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
        real_save(mngr, step, state, config, **kwargs)

    monkeypatch.setattr(checkpoint, "save", save_under_fire)
    yield calls
