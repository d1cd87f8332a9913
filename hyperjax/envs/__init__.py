"""Environments: a registry over Brax envs and a pure-JAX pendulum."""
