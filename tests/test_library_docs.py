"""Runs every ```python block of docs/library.md, each on its own (a fresh namespace, a temporary folder)."""

import os
import re

import pytest

DOC = os.path.join(os.path.dirname(__file__), os.pardir, "docs", "library.md")


def _blocks() -> list[tuple[str, str]]:
    """``(the section heading above it, code)`` per python block, in order."""
    text = open(DOC).read()
    blocks, heading = [], "top"
    for match in re.finditer(r"^## ([^\n]+)$|^```python\n(.*?)^```$", text, re.MULTILINE | re.DOTALL):
        if match.group(1):
            heading = match.group(1).strip()
        else:
            blocks.append((heading, match.group(2)))
    return blocks


BLOCKS = _blocks()


def test_the_doc_has_its_examples():
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("heading,code", BLOCKS, ids=[h for h, _ in BLOCKS])
def test_block_runs(heading, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"docs/library.md ({heading})", "exec"), {"__name__": "__docs__"})
