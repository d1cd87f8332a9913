"""The algorithm registry: every algorithm the entry points and the runner can run, by name.

An algorithm's module builds its own entry (``agents.base.Algorithm``: config, trainer, first-update
rule, checks, presets); this list is the only place that names them all.
"""

from hyperjax.agents import base, maml, pearl, sac, td3

ALGORITHMS: dict[str, base.Algorithm] = {
    a.name: a for a in (sac.ALGORITHM, td3.ALGORITHM, maml.ALGORITHM, pearl.ALGORITHM)
}


def get(name: str) -> base.Algorithm:
    """The registered algorithm ``name``; ValueError listing the valid names otherwise."""
    if name not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {name!r}; valid: {', '.join(ALGORITHMS)}")
    return ALGORITHMS[name]
