"""docs/authors_code.md's tables of the ``paper`` presets agree with the code, row by row.

Each algorithm has a table under ``### `<name>` `` in the section "The paper presets, row by row":
``| `field` | `value` | the authors' file:line | difference (flag) |``, with ``(env)`` after the field
for a per-environment value (``Algorithm.env_presets``) and ``run.<field>`` for the entry point's
``RunConfig`` defaults (``Algorithm.run_defaults``). Changing a ``paper`` value without its row, or a
row without the code, fails here.
"""

import ast
import dataclasses
import math
import pathlib
import re

import pytest

from hyperjax.agents import registry
from hyperjax.experiments import runner

DOC = pathlib.Path(__file__).parents[1] / "docs" / "authors_code.md"
SECTION = "## The paper presets, row by row"
ROW = re.compile(
    r"^\|\s*`(?P<field>[a-z_0-9.]+)`(?:\s*\((?P<env>[A-Za-z_0-9-]+)\))?\s*\|\s*`(?P<value>[^`]*)`\s*\|(?P<rest>.*)"
)
# RunConfig fields every algorithm's table must state (the experiment's size and protocol)
RUN_FIELDS = ("total_steps", "eval_every", "eval_episodes", "episode_length", "env_preset", "physics", "contact_forces")


def _tables() -> dict[str, list[re.Match]]:
    text = DOC.read_text()
    assert SECTION in text, f"{DOC.name} has no section {SECTION!r}"
    body = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    tables, name = {}, None
    for line in body.splitlines():
        heading = re.match(r"^### `(\w+)`", line)
        if heading:
            name = heading.group(1)
            tables[name] = []
        elif name and line.startswith("| `"):
            match = ROW.match(line)
            assert match, f"malformed row under {name}: {line}"
            tables[name].append(match)
    return tables


def _same(documented, actual) -> bool:
    if isinstance(actual, (list, tuple)):
        return (
            isinstance(documented, (list, tuple))
            and len(documented) == len(actual)
            and all(_same(d, a) for d, a in zip(documented, actual))
        )
    if isinstance(actual, float) or isinstance(documented, float):
        return isinstance(documented, (int, float)) and math.isclose(documented, actual, rel_tol=1e-9)
    return documented == actual


def _paper_config(algorithm, env: str | None):
    values = dict(algorithm.presets["paper"])
    if env is not None:
        values.update(algorithm.env_presets.get("paper", {}).get(env, {}))
    return dataclasses.replace(algorithm.config(), **values)


def _run_default(algorithm, name: str):
    if name in algorithm.run_defaults:
        return algorithm.run_defaults[name]
    return runner.RunConfig().__getattribute__(name)


@pytest.mark.parametrize("algo", list(registry.ALGORITHMS))
def test_every_paper_value_has_its_row(algo):
    algorithm = registry.get(algo)
    rows = _tables().get(algo)
    assert rows, f"docs/authors_code.md has no table for {algo} under {SECTION!r}"
    documented = {}
    for row in rows:
        field, env = row.group("field"), row.group("env")
        try:
            value = ast.literal_eval(row.group("value"))
        except (ValueError, SyntaxError):
            pytest.fail(f"{algo}: the value of `{field}` is not a Python literal: {row.group('value')!r}")
        assert row.group("rest").count("|") >= 2, f"{algo}: `{field}` needs the authors' source and a difference"
        if field.startswith("run."):
            actual = _run_default(algorithm, field[4:])
        else:
            config = _paper_config(algorithm, env)
            assert hasattr(config, field), f"{algo}: the table names `{field}`, which its config lacks"
            if env is not None:
                assert field in algorithm.env_presets["paper"].get(env, {}), (
                    f"{algo}: `{field}` ({env}) is documented as per-environment, but the code has no "
                    f"paper value of it for {env}"
                )
            actual = getattr(config, field)
        where = f"`{field}`" + (f" ({env})" if env else "")
        assert _same(value, actual), f"{algo}: {where} is {actual!r}, the table says {value!r}"
        documented[(field, env)] = value
    fields = [f.name for f in dataclasses.fields(algorithm.config)]
    missing = [f for f in fields if (f, None) not in documented]
    missing += [f"run.{f}" for f in RUN_FIELDS if (f"run.{f}", None) not in documented]
    for env, overrides in algorithm.env_presets.get("paper", {}).items():
        missing += [f"{f} ({env})" for f in overrides if (f, env) not in documented]
    assert not missing, f"{algo}: paper values without a row in docs/authors_code.md: {', '.join(missing)}"
