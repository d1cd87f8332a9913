"""hyperjax: hypernetwork critics and policies for RL in JAX (Sarafian et al., ICML 2021)."""

__version__ = "0.1.0"
