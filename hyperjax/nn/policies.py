"""Policies. Gaussian ones return ``(mean [B, act], log_std [B, act])``; the agent picks the
distribution (:func:`sample_tanh_gaussian` for SAC, a plain Normal for MAML).

Actions live in [-1, 1]; environments rescale to their own bounds.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from hyperjax.nn import hyper, layers

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0
LOG_STD_MODES = ("global", "head")


class TanhGaussianPolicy(nn.Module):
    """SAC policy: ``obs [B, obs]`` -> ``(mean, log_std)``, each ``[B, act]``, log_std in [-20, 2]."""

    action_size: int
    hidden_sizes: Sequence[int] = (256, 256)

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        layers.check_batch(type(self).__name__, obs=(obs, None))
        h = layers.MLP(self.hidden_sizes)(obs)
        mean = nn.Dense(self.action_size, **layers.xavier_dense_kwargs, name="mean")(h)
        log_std = nn.Dense(self.action_size, **layers.xavier_dense_kwargs, name="log_std")(h)
        return mean, jnp.clip(log_std, LOG_STD_MIN, LOG_STD_MAX)


class DeterministicPolicy(nn.Module):
    """TD3 policy: ``obs [B, obs]`` -> ``tanh(MLP(obs)) [B, act]``.

    ``linear_init`` defaults to PyTorch's default Linear init, as the authors' TD3 actor
    (``layers.LINEAR_INITS``).
    """

    action_size: int
    hidden_sizes: Sequence[int] = (256, 256)
    linear_init: str = "torch"

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        layers.check_batch(type(self).__name__, obs=(obs, None))
        return jnp.tanh(layers.MLP(self.hidden_sizes, out_size=self.action_size, linear_init=self.linear_init)(obs))


def _log_std(module: nn.Module, mode: str, head_output: jax.Array | None, batch: int, size: int) -> jax.Array:
    if mode == "global":  # MAML: a learned state-independent vector, init log(1) = 0
        log_std = module.param("log_std", nn.initializers.zeros, (size,))
        return jnp.broadcast_to(jnp.clip(log_std, LOG_STD_MIN, LOG_STD_MAX), (batch, size))
    if mode == "head":
        return jnp.clip(head_output, LOG_STD_MIN, LOG_STD_MAX)
    raise ValueError(f"unknown log_std mode {mode!r}; valid: {', '.join(LOG_STD_MODES)}")


class HyperPolicy(nn.Module):
    """Hyper policy for Meta-RL: the task context is the meta variable, the state the base.

    ``(obs [B, obs], context [B, ctx])`` -> ``(mean, log_std)``, each ``[B, act]``.

    Attributes:
      log_std_mode: ``global`` (a learned vector, Hyper-MAML) or ``head`` (state- and task-dependent:
        the dynamic network emits ``2 * act`` outputs, mean then log-std; PEARL's code uses a
        separate head of bound 0.001, here both share the output head's bound).
    """

    action_size: int
    hidden_sizes: Sequence[int] = (256,)
    init_mode: str = "authors"
    variant: str = "td3"
    log_std_mode: str = "global"
    widths: Sequence[int] = hyper.LATENT_WIDTHS
    blocks_per_width: int = 2

    def network(self, obs_size: int, **kwargs) -> hyper.HyperNetwork:
        """The hypernetwork inside (its parameters are ``params['hyper']``): ``generate`` its
        weights once per task and run them on all of the task's states (``hyper.apply_dynamic``).
        Outside a module: ``policy.network(obs_size, parent=None)``."""
        out_size = self.action_size * (2 if self.log_std_mode == "head" else 1)
        return hyper.HyperNetwork(
            obs_size,
            out_size,
            self.hidden_sizes,
            self.init_mode,
            self.variant,
            self.widths,
            self.blocks_per_width,
            **kwargs,
        )

    @nn.compact
    def __call__(self, obs: jax.Array, context: jax.Array) -> tuple[jax.Array, jax.Array]:
        layers.check_batch(type(self).__name__, obs=(obs, None), context=(context, None))
        out = self.network(obs.shape[-1], name="hyper")(context, obs)
        mean, head = out[:, : self.action_size], out[:, self.action_size :]
        return mean, _log_std(self, self.log_std_mode, head, obs.shape[0], self.action_size)


class ContextMLPPolicy(nn.Module):
    """Context-conditioned MLP policy: ``cat(obs, context)`` -> ``(mean, log_std)``.

    MAML's Context-MAML uses hidden (100, 100) and a ``global`` log-std.
    """

    action_size: int
    hidden_sizes: Sequence[int] = (100, 100)
    log_std_mode: str = "global"

    @nn.compact
    def __call__(self, obs: jax.Array, context: jax.Array) -> tuple[jax.Array, jax.Array]:
        layers.check_batch(type(self).__name__, obs=(obs, None), context=(context, None))
        out_size = self.action_size * (2 if self.log_std_mode == "head" else 1)
        out = layers.MLP(self.hidden_sizes, out_size=out_size)(jnp.concatenate([obs, context], -1))
        mean, head = out[:, : self.action_size], out[:, self.action_size :]
        return mean, _log_std(self, self.log_std_mode, head, obs.shape[0], self.action_size)


def tanh_gaussian(mean: jax.Array, log_std: jax.Array, noise: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Reparameterised ``a = tanh(mean + std * noise)`` and its log-probability.

    Args:
      mean, log_std: ``[B, act]``.
      noise: ``[B, act]`` standard-normal draws (SAC's update draws all of a step's noise at once).

    Returns:
      ``(action [B, act], log_prob [B])``. The Gaussian term uses ``noise`` itself (``(x - mean) /
      std`` is ``noise``); the tanh change of variables is written in the stable form
      ``2 (log 2 - x - softplus(-2x))`` (as the authors' SAC code).
    """
    x = mean + jnp.exp(log_std) * noise
    gaussian = -0.5 * noise**2 - log_std - 0.5 * jnp.log(2.0 * jnp.pi)
    correction = 2.0 * (jnp.log(2.0) - x - jax.nn.softplus(-2.0 * x))
    return jnp.tanh(x), jnp.sum(gaussian - correction, axis=-1)


def sample_tanh_gaussian(key: jax.Array, mean: jax.Array, log_std: jax.Array) -> tuple[jax.Array, jax.Array]:
    """:func:`tanh_gaussian` with its noise drawn from ``key``: ``(action [B, act], log_prob [B])``."""
    return tanh_gaussian(mean, log_std, jax.random.normal(key, mean.shape, mean.dtype))


POLICIES = {
    "tanh_gaussian": TanhGaussianPolicy,
    "deterministic": DeterministicPolicy,
    "hyper": HyperPolicy,
    "context_mlp": ContextMLPPolicy,
}
