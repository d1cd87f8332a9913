"""Headless OpenGL for MuJoCo's offscreen renderer (``mujoco.Renderer``): picks ``MUJOCO_GL``.

MuJoCo chooses its OpenGL backend once, when ``mujoco`` is first imported (Brax imports it with
``hyperjax.envs``), from ``MUJOCO_GL``; unset, it takes GLFW, which needs a display. So an entry
point that renders calls :func:`choose` before anything imports ``mujoco``: it keeps a ``MUJOCO_GL``
the user set, and otherwise sets the first of ``BACKENDS`` that opens a context here, each tried
in a short child process (about 0.7 s; a failed backend cannot be unloaded from this one):

- ``egl``: Mesa's EGL, surfaceless, rendering on the CPU with llvmpipe where there is no GPU (or
  the GPU's EGL driver). Debian/Ubuntu packages: ``EGL_PACKAGES``.
- ``osmesa``: Mesa's off-screen software renderer, the fallback. Package: ``OSMESA_PACKAGES``.

The training entry points render only on request (``--video_every``): ``cli`` calls
:func:`choose_if_flagged` first thing, which peeks at the command line before absl parses it.

Only rendering may depend on ``MUJOCO_GL``: a value MuJoCo cannot load (``nonsense``, ``osmesa``
without OSMesa) makes ``import mujoco`` raise, which would end every command that imports an env.
:func:`load_mujoco` (the entry points' ``quiet.imports`` calls it) imports ``mujoco`` once; if the
user's backend fails to load it imports it with OpenGL off instead and keeps the one-line reason in
``FAILED``, so training, analyses and pure-JAX drawings go on and only MuJoCo rendering reports it.

This module imports nothing heavy, so it can run first.
"""

import os
import subprocess
import sys
from collections.abc import Sequence

BACKENDS = ("egl", "osmesa")
EGL_PACKAGES = "libegl1 libopengl0 libgl1-mesa-dri"  # libEGL, libOpenGL (PyOpenGL), llvmpipe
OSMESA_PACKAGES = "libosmesa6"
# opens (and frees) a tiny context with the backend in MUJOCO_GL
_PROBE = "import mujoco; c = mujoco.GLContext(8, 8); c.make_current(); c.free()"


def missing_message(backend: str | None = None) -> str:
    """The one-line error when no backend renders (``backend``: the one that failed, if known)."""
    tried = f"MUJOCO_GL={backend} failed" if backend else f"none of MUJOCO_GL={', '.join(BACKENDS)} works"
    return (
        f"MuJoCo cannot render headless here ({tried}): install Mesa's EGL "
        f"(apt-get install {EGL_PACKAGES}) or OSMesa ({OSMESA_PACKAGES}), or set MUJOCO_GL to a working backend"
    )


def works(backend: str) -> bool:
    """True if a MuJoCo GL context opens with ``MUJOCO_GL=backend`` (tried in a child process)."""
    env = {**os.environ, "MUJOCO_GL": backend}
    try:
        probe = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def choose() -> str | None:
    """Sets ``MUJOCO_GL`` to the first working headless backend unless it is set; returns its value.

    None: nothing works (``MUJOCO_GL`` is left unset; rendering a MuJoCo env then fails with
    :func:`missing_message`, while drawings without OpenGL, e.g. the pendulum's, still work).

    Raises:
      RuntimeError: ``mujoco`` is already imported, so the choice would have no effect.
    """
    if os.environ.get("MUJOCO_GL"):
        return os.environ["MUJOCO_GL"]
    if "mujoco" in sys.modules:
        raise RuntimeError("headless.choose() must run before mujoco is imported (it reads MUJOCO_GL once)")
    for backend in BACKENDS:
        if works(backend):
            os.environ["MUJOCO_GL"] = backend
            return backend
    return None


# set by load_mujoco when MUJOCO_GL names a backend that cannot load: the one-line reason rendering is off
FAILED: str | None = None
VIDEO_FLAG = "video_every"  # the training flag that renders (a run's periodic videos)
_GL_OFF = "disable"  # MuJoCo's value for "no OpenGL" (its Renderer then fails, nothing else does)


def load_mujoco(render: bool) -> str | None:
    """Imports ``mujoco`` (once, before anything else does) so that a bad ``MUJOCO_GL`` cannot end the
    process; returns :data:`FAILED` (None: MuJoCo loaded with the backend asked for).

    ``render``: the command renders MuJoCo, so an unset ``MUJOCO_GL`` is chosen first (:func:`choose`).
    A set ``MUJOCO_GL`` that fails to load (MuJoCo raises at import for an unknown value, PyOpenGL for a
    missing library) is retried with OpenGL off, ``MUJOCO_GL`` left as the user set it, and the reason
    kept in ``FAILED`` (rendering a MuJoCo env then fails with it, in one line). An import that fails
    for any other reason (no ``MUJOCO_GL`` set) is raised as it is.
    """
    global FAILED
    if "mujoco" in sys.modules:
        return FAILED
    if render:
        choose()
    backend = os.environ.get("MUJOCO_GL")
    try:
        import mujoco  # noqa: F401
    except Exception as e:  # RuntimeError (unknown value), AttributeError/ImportError/OSError (PyOpenGL)
        if not backend:
            raise
        ours = [m for m in sys.modules if m == "mujoco" or m.startswith("mujoco.")]
        for name in ours:  # the half-imported Python modules go; compiled ones stay (they cannot load twice)
            if not (getattr(sys.modules[name], "__file__", None) or "").endswith(".so"):
                del sys.modules[name]
        os.environ["MUJOCO_GL"] = _GL_OFF
        try:
            import mujoco  # noqa: F401
        finally:
            os.environ["MUJOCO_GL"] = backend
        for name in [m for m in sys.modules if m.startswith("mujoco.")]:  # kept modules: attributes of the new parent
            parent, _, child = name.rpartition(".")
            if parent in sys.modules and not hasattr(sys.modules[parent], child):
                setattr(sys.modules[parent], child, sys.modules[name])
        FAILED = f"{missing_message(backend)} ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
    return FAILED


def flagged(argv: Sequence[str], flag: str) -> bool:
    """True if ``argv`` (a command line before absl parses it) sets ``--flag`` to a nonzero integer.

    Reads ``--flag=N`` and ``--flag N`` (one dash too; the last one wins, none after ``--``), not
    flag files: a ``--flagfile`` that sets it needs ``MUJOCO_GL`` set by hand.
    """
    value = None
    args = list(argv[1:])
    for i, arg in enumerate(args):
        if arg == "--":
            break
        name, equals, given = arg.lstrip("-").partition("=")
        if arg.startswith("-") and name == flag:
            value = given if equals else (args[i + 1] if i + 1 < len(args) else None)
    try:
        return value is not None and int(value, 0) != 0
    except ValueError:  # not a number: absl reports it
        return False


def choose_if_flagged(argv: Sequence[str], flag: str) -> str | None:
    """:func:`choose` if ``argv`` sets ``--flag`` to a nonzero integer (:func:`flagged`) and ``mujoco``
    is not imported yet; ``MUJOCO_GL`` otherwise, unchanged. For entry points that render on request."""
    if flagged(argv, flag) and "mujoco" not in sys.modules:
        return choose()
    return os.environ.get("MUJOCO_GL")
