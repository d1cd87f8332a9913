"""Plain building blocks shared by critics and policies: MLPs, their two inits, input checks."""

import math
from collections.abc import Sequence

import flax.linen as nn
import jax

from hyperjax.nn import init as hinit

# The authors' two code bases initialise their plain Linear layers differently (docs/authors_code.md, Baselines):
# ``xavier``: SAC's init_weights, xavier_uniform weights and zero biases;
# ``torch``: TD3 keeps PyTorch's default nn.Linear, weights and biases U(+-1/sqrt(fan_in)).
LINEAR_INITS = ("xavier", "torch")
xavier_dense_kwargs = dict(kernel_init=nn.initializers.xavier_uniform(), bias_init=nn.initializers.zeros)


def dense(features: int, fan_in: int, init: str = "xavier", name: str | None = None) -> nn.Dense:
    """A Dense layer with one of the ``LINEAR_INITS`` (``fan_in``: its input width)."""
    if init == "xavier":
        return nn.Dense(features, **xavier_dense_kwargs, name=name)
    if init == "torch":
        bound = 1.0 / math.sqrt(fan_in)
        return nn.Dense(features, kernel_init=hinit.uniform(bound), bias_init=hinit.uniform(bound), name=name)
    raise ValueError(f"unknown linear init {init!r}; valid: {', '.join(LINEAR_INITS)}")


class MLP(nn.Module):
    """``[..., in]`` -> ``[..., hidden_sizes[-1]]`` (or ``out_size``): Dense+ReLU layers.

    Attributes:
      hidden_sizes: widths of the ReLU layers.
      out_size: if set, a final linear layer of this width (no activation).
      linear_init: one of ``LINEAR_INITS``.
    """

    hidden_sizes: Sequence[int]
    out_size: int | None = None
    linear_init: str = "xavier"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for width in self.hidden_sizes:
            x = nn.relu(dense(width, x.shape[-1], self.linear_init)(x))
        if self.out_size is not None:
            x = dense(self.out_size, x.shape[-1], self.linear_init)(x)
        return x


def check_batch(module_name: str, **arrays_and_widths: tuple[jax.Array, int | None]) -> None:
    """Raises a clear ValueError unless every array is ``[B, width]`` with one shared B.

    Runs at trace time on static shapes, so it costs nothing under jit.

    Args:
      module_name: named in the message.
      **arrays_and_widths: ``name=(array, expected_width or None)``.
    """
    batch = None
    for name, (array, width) in arrays_and_widths.items():
        shape = getattr(array, "shape", None)
        if shape is None or len(shape) != 2:
            raise ValueError(f"{module_name}: {name} must be a [batch, features] array, got shape {shape}")
        if width is not None and shape[1] != width:
            raise ValueError(f"{module_name}: {name} has width {shape[1]}, expected {width} (shape {shape})")
        if batch is not None and shape[0] != batch:
            raise ValueError(f"{module_name}: batch sizes differ: {name} has {shape[0]}, expected {batch}")
        batch = shape[0]


def ensemble(module_cls: type[nn.Module], num: int, **kwargs) -> nn.Module:
    """``num`` independent copies of a module, params stacked on axis 0, outputs ``[num, ...]``."""
    return nn.vmap(
        module_cls,
        variable_axes={"params": 0},
        split_rngs={"params": True},
        in_axes=None,
        out_axes=0,
        axis_size=num,
    )(**kwargs)
