"""Analyses of the paper: measurements made on trained agents (e.g. the MAML meta-gradient noise)."""
