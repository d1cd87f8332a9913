"""The hypernetwork: a primary ResNet maps a meta variable to the weights of a dynamic network.

Two halves, each testable on its own:

* :class:`WeightGenerator` (a linen module): meta ``[B, meta]`` -> :class:`DynamicLayer` per
  layer, per sample.
* :func:`apply_dynamic` (a plain function): runs the generated network on the base variable,
  ``x' = relu((1 + g) * (x @ W) + b)`` per sample as a batched einsum, no activation on the
  last layer.

:class:`HyperNetwork` composes the two.

References:
  Sarafian, Keynan, Kraus. Recomposing the Reinforcement Learning Building Blocks with
  Hypernetworks. ICML 2021, Eq. (1) and Section 4.
"""

from collections.abc import Sequence
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from hyperjax.nn import init as hinit

LATENT_WIDTHS = (256, 512, 1024)
# the primary network's and heads' compute dtype, as Flax's ``dtype``: ``float32`` is Flax's
# ``None`` (inferred from the inputs and parameters: float32 by default, float64 for float64 inputs and
# ``param_dtype``), ``bfloat16`` mixed precision (the generated weights, the dynamic network and every
# gradient that leaves it are then float32); parameters are ``param_dtype`` (float32 by default)
COMPUTE_DTYPES = ("float32", "bfloat16")


def _compute(dtype: str):
    """``None`` (Flax infers the dtype from the inputs and parameters) or the reduced dtype."""
    if dtype not in COMPUTE_DTYPES:
        raise ValueError(f"unknown compute dtype {dtype!r}; valid: {', '.join(COMPUTE_DTYPES)}")
    return None if dtype == "float32" else jnp.dtype(dtype)


class DynamicLayer(NamedTuple):
    """One generated layer for a batch of samples.

    Attributes:
      w: ``[B, in, out]`` weight matrix.
      b: ``[B, out]`` bias.
      g: ``[B, out]`` gain offset; the layer multiplies by ``1 + g``.
    """

    w: jax.Array
    b: jax.Array
    g: jax.Array


def apply_dynamic(layers: Sequence[DynamicLayer], x: jax.Array) -> jax.Array:
    """Runs the per-sample dynamic network.

    Args:
      layers: generated layers, first to last: per sample (``w [B, in, out]``), or one set shared
        by the whole batch (``w [in, out]``, ``b, g [out]``: e.g. a policy's weights generated
        once per task and run on all of the task's states, a plain GEMM).
      x: ``[B, in]`` base variable.

    Returns:
      ``[B, out]``; ReLU after every layer but the last.
    """
    for i, layer in enumerate(layers):
        spec = "bi,bio->bo" if layer.w.ndim == 3 else "bi,io->bo"
        x = (1.0 + layer.g) * jnp.einsum(spec, x, layer.w) + layer.b
        if i < len(layers) - 1:
            x = nn.relu(x)
    return x


def _primary_dense(features: int, fan_in: int, variant: str, dtype: str, param_dtype) -> nn.Dense:
    return nn.Dense(
        features,
        kernel_init=hinit.uniform(hinit.primary_weight_bound(fan_in, variant)),
        bias_init=hinit.uniform(hinit.torch_default_bias_bound(fan_in)),
        dtype=_compute(dtype),
        param_dtype=param_dtype,
    )


class ResBlock(nn.Module):
    """Pre-activation residual block ``x + L2(relu(L1(relu(x))))``, width preserved."""

    variant: str = "sac"
    dtype: str = "float32"
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        width = x.shape[-1]
        h = _primary_dense(width, width, self.variant, self.dtype, self.param_dtype)(nn.relu(x))
        h = _primary_dense(width, width, self.variant, self.dtype, self.param_dtype)(nn.relu(h))
        return x + h


class PrimaryNetwork(nn.Module):
    """The paper's primary ResNet: meta ``[B, meta]`` -> latent ``[B, widths[-1]]``.

    ``Linear(meta, 256), 2 x RB(256), Linear(256, 512), 2 x RB(512), Linear(512, 1024),
    2 x RB(1024)``; no final nonlinearity (docs/authors_code.md, Hypernetwork).
    """

    widths: Sequence[int] = LATENT_WIDTHS
    blocks_per_width: int = 2
    variant: str = "sac"
    dtype: str = "float32"
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, meta: jax.Array) -> jax.Array:
        x = meta
        for width in self.widths:
            x = _primary_dense(width, x.shape[-1], self.variant, self.dtype, self.param_dtype)(x)
            for _ in range(self.blocks_per_width):
                x = ResBlock(self.variant, self.dtype, self.param_dtype)(x)
        return x


class WeightGenerator(nn.Module):
    """Meta variable -> the dynamic network's weights, one set per sample.

    Each dynamic layer has one head, a single Dense from the latent that emits the layer's
    ``W``, ``b`` and ``g`` together (one matmul, columns ``[W (in*out) | b (out) | g (out)]``).

    Attributes:
      base_size: input width of the dynamic network.
      out_size: output width of the dynamic network.
      hidden_sizes: hidden widths of the dynamic network (paper: one layer of 256).
      init_mode: ``authors`` or ``kaiming`` (see :mod:`hyperjax.nn.init`).
      variant: primary-network weight bound, ``sac`` or ``td3``.
      dtype: compute dtype of the primary network and the heads (``COMPUTE_DTYPES``); with
        ``bfloat16`` the generated weights are returned as float32, otherwise in the dtype Flax
        infers (float64 for float64 inputs and ``param_dtype``).
      param_dtype: the parameters' dtype (Flax's convention; float32).
    """

    base_size: int
    out_size: int
    hidden_sizes: Sequence[int] = (256,)
    init_mode: str = "authors"
    variant: str = "sac"
    widths: Sequence[int] = LATENT_WIDTHS
    blocks_per_width: int = 2
    dtype: str = "float32"
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, meta: jax.Array) -> list[DynamicLayer]:
        """``meta [B, meta]`` -> list of :class:`DynamicLayer`."""
        if self.init_mode not in hinit.INIT_MODES:
            raise ValueError(f"unknown init mode {self.init_mode!r}; valid: {', '.join(hinit.INIT_MODES)}")
        z = PrimaryNetwork(
            self.widths, self.blocks_per_width, self.variant, self.dtype, self.param_dtype, name="primary"
        )(meta)
        q_z = hinit.predict_latent_second_moment(meta.shape[-1], self.widths, self.blocks_per_width, self.variant)
        sizes = (self.base_size, *self.hidden_sizes, self.out_size)
        layers = []
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            bound = hinit.head_bound(
                self.init_mode,
                dynamic_fan_in=fan_in,
                is_last=i == len(sizes) - 2,
                latent_size=self.widths[-1],
                latent_second_moment=q_z,
            )
            out = nn.Dense(
                fan_in * fan_out + 2 * fan_out,
                kernel_init=hinit.uniform(bound),
                bias_init=nn.initializers.zeros,
                dtype=_compute(self.dtype),
                param_dtype=self.param_dtype,
                name=f"head_{i}",
            )(z)
            # the dynamic network runs in float32 at least (bf16 heads' output is cast up; float64 stays)
            out = out.astype(jnp.promote_types(out.dtype, jnp.float32))
            w, b, g = jnp.split(out, [fan_in * fan_out, fan_in * fan_out + fan_out], axis=-1)
            layers.append(DynamicLayer(w.reshape(*w.shape[:-1], fan_in, fan_out), b, g))
        return layers


class HyperNetwork(nn.Module):
    """``f(meta, base)``: weights generated from ``meta [B, meta]`` run on ``base [B, base]``.

    Returns ``[B, out_size]``. Attributes as in :class:`WeightGenerator`.
    """

    base_size: int
    out_size: int
    hidden_sizes: Sequence[int] = (256,)
    init_mode: str = "authors"
    variant: str = "sac"
    widths: Sequence[int] = LATENT_WIDTHS
    blocks_per_width: int = 2
    dtype: str = "float32"
    param_dtype: jnp.dtype = jnp.float32

    def setup(self):
        self.generator = WeightGenerator(
            self.base_size,
            self.out_size,
            self.hidden_sizes,
            self.init_mode,
            self.variant,
            self.widths,
            self.blocks_per_width,
            self.dtype,
            self.param_dtype,
        )

    def generate(self, meta: jax.Array) -> list[DynamicLayer]:
        """The generated dynamic weights (use with ``module.apply(..., method='generate')``)."""
        return self.generator(meta)

    def __call__(self, meta: jax.Array, base: jax.Array) -> jax.Array:
        return apply_dynamic(self.generator(meta), base)
