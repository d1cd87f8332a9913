"""Counting XLA compilations through JAX's public ``jax.log_compiles`` (no private cache APIs)."""

import collections
import contextlib
import logging
import re

import jax

_COMPILING = re.compile(r"Compiling jit\((\w+)\)")


@contextlib.contextmanager
def counted(caplog):
    """``with counted(caplog) as count:`` ... ``count['chunk_one']``: compilations per function name."""
    count = collections.Counter()
    caplog.clear()
    with caplog.at_level(logging.WARNING), jax.log_compiles():
        yield count
    for record in caplog.records:
        match = _COMPILING.search(record.getMessage())
        if match:
            count[match.group(1)] += 1
