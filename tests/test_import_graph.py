"""The import graph has floors and no arrow back up: a room (a subpackage of ``hyperjax`` or a
top-level module) imports only rooms on lower floors, never one on its own floor or above.

Reads the sources with ``ast`` (imports inside functions count too); imports nothing of hyperjax.
A new subpackage or top-level module fails here until it is given a floor.
"""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "hyperjax"

# Lowest first. WORKSPACE.md ("Layers") draws the same floors.
FLOORS = (
    {"types", "config"},  # shared types and config fields
    {"nn", "envs"},  # the module library; the environments
    {"nnx", "train"},  # nnx wrappers of nn; the training floor (loops, trainer, contracts, checkpoints)
    {"agents"},  # the algorithms (sac, td3, maml, pearl) and their registry
    {"analysis"},  # measurements on trained agents
    {"experiments"},  # entry points, runner, CLI
)
FLOOR = {room: level for level, rooms in enumerate(FLOORS) for room in rooms}
# The repository's other top-level folders: the library never imports them.
OUTSIDE = ("benchmarks", "experiments", "tests")


def room_of(path: pathlib.Path) -> str:
    """``hyperjax/train/loop.py`` -> ``train``; ``hyperjax/types.py`` -> ``types``."""
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else path.stem


def imported_modules(path: pathlib.Path) -> list[tuple[int, str]]:
    """``(line, dotted name)`` of every absolute import in the file; ``from a import b`` gives ``a.b``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: relative import; write it absolute"
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def arrows() -> list[tuple[str, str, str]]:
    """``(room, imported room, where)`` for every import from one hyperjax room into another."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "__init__.py":
            continue
        room = room_of(path)
        for line, name in imported_modules(path):
            parts = name.split(".")
            if parts[0] == "hyperjax" and len(parts) > 1 and parts[1] != room:
                found.append((room, parts[1], f"{path.relative_to(ROOT)}:{line} imports {name}"))
    return found


def test_every_room_has_a_floor():
    rooms = {room_of(path) for path in PACKAGE.rglob("*.py") if path != PACKAGE / "__init__.py"}
    assert rooms - FLOOR.keys() == set(), "give these rooms a floor in FLOORS (and WORKSPACE.md)"


def test_no_import_goes_up_or_sideways():
    bad = [
        f"{where} (floor {FLOOR[room]} -> {FLOOR[target]}: {'up' if FLOOR[target] > FLOOR[room] else 'sideways'})"
        for room, target, where in arrows()
        if FLOOR[target] >= FLOOR[room]
    ]
    assert bad == [], "imports against the floors:\n" + "\n".join(bad)


def test_library_imports_nothing_outside_it():
    bad = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for line, name in imported_modules(path)
        if name.split(".")[0] in OUTSIDE
    ]
    package_root = [name for _, name in imported_modules(PACKAGE / "__init__.py") if name.startswith("hyperjax")]
    assert bad == [] and package_root == [], (bad, package_root)


def test_the_parser_sees_imports_in_functions(tmp_path):
    """The check reads lazy imports too (a function-level import is still an arrow)."""
    source = tmp_path / "lazy.py"
    source.write_text("def f():\n    from hyperjax.agents import base\n    import hyperjax.train.loop\n")
    assert imported_modules(source) == [(2, "hyperjax.agents.base"), (3, "hyperjax.train.loop")]
