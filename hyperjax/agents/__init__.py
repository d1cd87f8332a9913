"""Agents: SAC and TD3 as pure functions over a training-state pytree."""
