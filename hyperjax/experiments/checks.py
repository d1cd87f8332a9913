"""What every command checks before it does any work, as one-line errors (``error: ...`` on stderr,
the SAC CLI's form): where it will write, and its argparse flags.

Standard library only, so the light commands (``experiments/sweep.py`` and the figure scripts) can
use it without importing JAX.
"""

import argparse
import os
import sys
from collections.abc import Callable


def _nearest(path: str) -> str:
    """The nearest part of ``path`` that exists (itself, or the closest existing ancestor)."""
    parent = os.path.abspath(path)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    return parent


def why_not_writable(folder: str) -> str | None:
    """Why nothing can be created in the existing ``folder`` (None: it can)."""
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return f"{folder} is on a read-only file system"
    except OSError:
        pass
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"no permission to write in {folder}"
    return None


def folder(path: str, flag: str | None) -> None:
    """ValueError (one line, naming ``flag``, or the path alone when None) unless ``path`` is a folder
    that exists or can be created, and can be written."""
    what = f"{flag}={path}" if flag else path
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"{what} is a file; give a folder (new or existing)")
    parent = _nearest(path)
    if not os.path.isdir(parent):
        raise ValueError(f"{what} cannot be created: {parent} is a file")
    why = why_not_writable(parent)
    if why:
        raise ValueError(f"{what} cannot be written: {why}")


def output_file(path: str, flag: str, example: str) -> None:
    """ValueError (one line, naming ``flag``) unless ``path`` can be written as a file (``example``:
    a valid value, shown when ``path`` is a folder)."""
    if os.path.isdir(path):
        raise ValueError(f"{flag}={path} is a folder; give a file name, e.g. {example}")
    parent = _nearest(os.path.dirname(os.path.abspath(path)))
    if not os.path.isdir(parent):
        raise ValueError(f"{flag}={path} cannot be created: {parent} is a file")
    why = why_not_writable(parent)
    if why is None and os.path.exists(path) and not os.access(path, os.W_OK):
        why = f"no permission to write {path}"
    if why:
        raise ValueError(f"{flag}={path} cannot be written: {why}")


def one_line_errors(work: Callable[[], int | None], interrupted: str, refusals: tuple[type, ...] = ()) -> int:
    """Runs a command's ``work`` and returns its exit code (its own, or 0 for None). A bad setting
    (``ValueError`` or one of ``refusals``) or an ``OSError`` is one line (``error: ...``) and 1; Ctrl-C is
    ``interrupted: <interrupted>`` (what is kept and how to go on) and 130."""
    try:
        return work() or 0
    except (ValueError, *refusals) as e:
        print(f"error: {e}", file=sys.stderr)
    except OSError as e:
        print(f"error: {os_error(e)}", file=sys.stderr)
    except KeyboardInterrupt:
        print(f"\ninterrupted: {interrupted}", file=sys.stderr)
        return 130
    return 1


def os_error(e: OSError) -> str:
    """An OSError as one line: ``<file>: <reason>`` (or its own message)."""
    if e.filename and e.strerror:
        return f"{e.filename}: {e.strerror}"
    return str(e).splitlines()[0] if str(e) else type(e).__name__


class ArgumentParser(argparse.ArgumentParser):
    """argparse with its errors as one line (``error: ...``, exit code 1) instead of the usage and the
    message."""

    def error(self, message: str):
        print(f"error: {message} (see --help)", file=sys.stderr)
        sys.exit(1)


def positive(text: str) -> int:
    """An argparse ``type`` for counts: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be >= 1")
    return value


def names(text: str, flag: str, valid: tuple[str, ...] | None = None) -> list[str]:
    """A comma list of names: ValueError (one line, naming ``flag``) when it names none, repeats one, or
    names one outside ``valid``."""
    items = [s.strip() for s in text.split(",")]
    if not all(items):
        example = f"; give e.g. {flag}={','.join(valid[:2])}" if valid else ""
        raise ValueError(f"{flag}={text} has an empty entry{example}")
    repeated = sorted({s for s in items if items.count(s) > 1})
    if repeated:
        raise ValueError(f"{flag}={text} names {repeated[0]} twice")
    if valid is not None:
        unknown = [s for s in items if s not in valid]
        if unknown:
            raise ValueError(f"{flag}: unknown {unknown[0]!r}; valid: {', '.join(valid)}")
    return items
