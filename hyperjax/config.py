"""Config fields that declare their meaning and valid values once.

``field(default, help, valid=...)`` puts a sentence and a ``Range`` (or the valid choices) in the
dataclass field's metadata; the CLI builds each flag's help from it (``help_text``) and the runner
validates a whole config with it (``check``), so a range is written in one place only.
"""

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any


@dataclasses.dataclass(frozen=True)
class Range:
    """A numeric interval; ``low_open`` excludes ``low``. Applies to every element of a sequence."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False

    def contains(self, value) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            return False
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        return above and (self.high is None or value <= self.high)

    def __str__(self) -> str:
        if self.low is not None and self.high is not None:
            return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}]"
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        return f"<= {self.high:g}"


POSITIVE_INT = Range(1)
NON_NEGATIVE = Range(0)
POSITIVE = Range(0, low_open=True)
UNIT_INTERVAL = Range(0, 1, low_open=True)  # (0, 1]: discount factors, Polyak rates


def field(default: Any = dataclasses.MISSING, help: str = "", *, valid=None, default_factory=dataclasses.MISSING):
    """A dataclass field with its help sentence and ``valid``: a ``Range``, a sequence of choices,
    or a zero-argument callable returning the choices (evaluated when checked)."""
    metadata = {"help": help, "valid": valid}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _choices(valid) -> Sequence | None:
    if isinstance(valid, Range) or valid is None:
        return None
    return tuple(valid() if isinstance(valid, Callable) else valid)


def describe_valid(f: dataclasses.Field) -> str:
    valid = f.metadata.get("valid")
    if isinstance(valid, Range):
        return str(valid)
    choices = _choices(valid)
    return f"one of {', '.join(map(str, choices))}" if choices else ""


def default_of(f: dataclasses.Field):
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


def help_text(f: dataclasses.Field) -> str:
    """``<sentence> Valid: <range or choices>.`` (absl adds the default)."""
    parts = [f.metadata.get("help", "").strip() or f.name.replace("_", " ")]
    valid = describe_valid(f)
    if valid:
        parts.append(f"Valid: {valid}.")
    return " ".join(parts)


def check(config) -> None:
    """Raises ValueError (one line, naming the flag, the value and what is valid) for the first
    field of ``config`` outside its declared range or choices; None passes (an unset option)."""
    for f in dataclasses.fields(config):
        value, valid = getattr(config, f.name), f.metadata.get("valid")
        if value is None or valid is None:
            continue
        if isinstance(valid, Range):
            values = value if isinstance(value, (tuple, list)) else (value,)
            if not all(valid.contains(v) for v in values):
                what = "every entry" if isinstance(value, (tuple, list)) else "it"
                raise ValueError(f"--{f.name}={_show(value)} is out of range: {what} must be {valid}")
        elif value not in _choices(valid):
            raise ValueError(f"--{f.name}={_show(value)} is not valid; valid: {', '.join(map(str, _choices(valid)))}")


def int_list(name: str, values: Sequence[str]) -> tuple[int, ...]:
    """A comma-list flag's entries as integers; ValueError (one line) naming the flag otherwise."""
    try:
        return tuple(int(x) for x in values)
    except ValueError:
        raise ValueError(f"--{name}={','.join(values)} is not a list of integers; give e.g. --{name}=256,256") from None


def _show(value) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value))
    return str(value)


def as_tuples(value):
    """JSON lists -> tuples, recursively (configs hold tuples: hashable, as the flags give them)."""
    if isinstance(value, list):
        return tuple(as_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: as_tuples(v) for k, v in value.items()}
    return value
