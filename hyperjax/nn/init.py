"""Initialisers of the hypernetwork, and an analytic model of the scale they produce.

Two named modes (docs/authors_code.md, Hypernetwork):

* ``authors`` (default): the bounds of the authors' PyTorch code, which produced the paper's
  results. Primary-network weights U(+-bound(fan_in)), biases PyTorch's default
  U(+-1/sqrt(fan_in)); head kernels U(+-0.05) for hidden dynamic layers and U(+-0.008) for the
  last one, head biases 0.
* ``kaiming``: the same primary network, but head bounds chosen so that the *generated* dynamic
  weights have the Kaiming-uniform spread of the dynamic layer they feed (PyTorch's default
  ``nn.Linear`` init, std = 1/sqrt(3 * fan_in)), as the paper's text describes.

The scale model propagates the mean second moment q = E[x_i^2] of the activations through the
primary network at initialisation, averaging over the random weights and inputs:
``Linear: q -> fan_in * a^2/3 * q + beta^2/3``, ``ReLU: q -> q/2`` (symmetric pre-activations)
and ``ResBlock: q -> q + f(q)`` (the residual branch is uncorrelated with its input).
A generated entry ``W_ij = sum_k z_k K_kj`` with K ~ U(+-c) then has variance
``c^2/3 * latent * q_z``.
"""

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp

INIT_MODES = ("authors", "kaiming")
PRIMARY_VARIANTS = ("sac", "td3")
AUTHORS_HIDDEN_HEAD_BOUND = 0.05
AUTHORS_OUTPUT_HEAD_BOUND = 0.008


def uniform(bound: float):
    """A flax initialiser drawing U(-bound, bound)."""

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def torch_default_bias_bound(fan_in: int) -> float:
    """PyTorch's default ``nn.Linear`` bias bound, 1/sqrt(fan_in)."""
    return 1.0 / math.sqrt(fan_in)


def primary_weight_bound(fan_in: int, variant: str = "sac") -> float:
    """Weight bound of the primary network's Linear layers in the authors' code.

    ``sac``: 1/sqrt(2 fan_in) (SAC/models/hyper_network.py);
    ``td3``: 1/(2 sqrt(fan_in)) (TD3, MAML and PEARL hypernetworks).
    """
    if variant == "sac":
        return 1.0 / math.sqrt(2.0 * fan_in)
    if variant == "td3":
        return 1.0 / (2.0 * math.sqrt(fan_in))
    raise ValueError(f"unknown primary_variant {variant!r}; valid: {', '.join(PRIMARY_VARIANTS)}")


def _linear_moment(q: float, fan_in: int, variant: str) -> float:
    a = primary_weight_bound(fan_in, variant)
    beta = torch_default_bias_bound(fan_in)
    return fan_in * a * a / 3.0 * q + beta * beta / 3.0


def predict_latent_second_moment(
    meta_size: int,
    widths: Sequence[int] = (256, 512, 1024),
    blocks_per_width: int = 2,
    variant: str = "sac",
    input_second_moment: float = 1.0,
) -> float:
    """Predicted mean E[z_k^2] of the primary network's output at init (see module doc)."""
    q, fan_in = input_second_moment, meta_size
    for width in widths:
        q = _linear_moment(q, fan_in, variant)
        for _ in range(blocks_per_width):
            branch = _linear_moment(q / 2.0, width, variant)
            branch = _linear_moment(branch / 2.0, width, variant)
            q = q + branch
        fan_in = width
    return q


def head_bound(
    mode: str,
    *,
    dynamic_fan_in: int,
    is_last: bool,
    latent_size: int,
    latent_second_moment: float,
) -> float:
    """Uniform bound of one head's kernel (it emits a dynamic layer's W, b and g)."""
    if mode == "authors":
        return AUTHORS_OUTPUT_HEAD_BOUND if is_last else AUTHORS_HIDDEN_HEAD_BOUND
    if mode == "kaiming":
        # c^2/3 * latent * q_z = 1 / (3 * fan_in)  (Kaiming-uniform variance of the dynamic layer)
        return 1.0 / math.sqrt(dynamic_fan_in * latent_size * latent_second_moment)
    raise ValueError(f"unknown init mode {mode!r}; valid: {', '.join(INIT_MODES)}")


def predict_dynamic_weight_std(
    mode: str,
    *,
    meta_size: int,
    dynamic_fan_in: int,
    is_last: bool,
    variant: str = "sac",
    widths: Sequence[int] = (256, 512, 1024),
    blocks_per_width: int = 2,
    input_second_moment: float = 1.0,
) -> float:
    """Predicted std of generated dynamic weight entries over meta inputs and entries."""
    q_z = predict_latent_second_moment(meta_size, widths, blocks_per_width, variant, input_second_moment)
    c = head_bound(
        mode, dynamic_fan_in=dynamic_fan_in, is_last=is_last, latent_size=widths[-1], latent_second_moment=q_z
    )
    return c * math.sqrt(widths[-1] * q_z / 3.0)


def kaiming_uniform_std(fan_in: int) -> float:
    """Std of PyTorch's default Linear weight init, U(+-1/sqrt(fan_in))."""
    return 1.0 / math.sqrt(3.0 * fan_in)
