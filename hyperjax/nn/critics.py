"""Q critics with one contract: ``q = module.apply(variables, obs [B, obs], action [B, act])``,
``q`` of shape ``[num_critics, B]`` (twin critics by default, fully independent parameters
stacked on a leading axis of every leaf).

Build them by name with :func:`make_critic`. Sizes follow docs/authors_code.md (Baselines). A critic's
own facts live in its registry entry (``CRITICS``): its preset sizes and the authors' learning rate
for it. Every critic takes ``variant``, the authors' code base whose initialisation it reproduces
(``sac`` or ``td3``): the agent names its code base, the critic decides what that means for it.
"""

import dataclasses
import json
from collections.abc import Sequence
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from hyperjax.nn import hyper, layers
from hyperjax.nn import init as hinit


class _Critic(nn.Module):
    """Shared contract: checks inputs, runs ``num_critics`` copies of ``q_network()``.

    Attributes:
      variant: the authors' code base to reproduce, one of ``VARIANTS``: hypernetworks take its
        primary-network bound (``hyperjax.nn.init``), plain layers its Linear init (``sac``:
        xavier weights, zero biases; ``td3``: PyTorch's default).
    """

    action_size: int
    num_critics: int = 2
    variant: str = "sac"

    @property
    def linear_init(self) -> str:
        """The plain layers' init (``layers.LINEAR_INITS``) of this code base."""
        if self.variant not in VARIANTS:
            raise ValueError(f"{type(self).__name__}: unknown variant {self.variant!r}; valid: {', '.join(VARIANTS)}")
        return VARIANTS[self.variant]

    def q_network(self) -> tuple[type[nn.Module], dict]:
        """The single-Q module class and its kwargs; it maps (obs, action) to ``[B, 1]``."""
        raise NotImplementedError

    @nn.compact
    def __call__(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        """``obs [B, obs], action [B, act]`` -> ``q [num_critics, B]``."""
        layers.check_batch(type(self).__name__, obs=(obs, None), action=(action, self.action_size))
        if self.num_critics < 1:
            raise ValueError(f"{type(self).__name__}: num_critics must be >= 1, got {self.num_critics}")
        cls, kwargs = self.q_network()
        return layers.ensemble(cls, self.num_critics, name="q", **kwargs)(obs, action)[..., 0]


class _ConcatMLPQ(nn.Module):
    hidden_sizes: Sequence[int]
    linear_init: str

    @nn.compact
    def __call__(self, obs, action):
        return layers.MLP(self.hidden_sizes, out_size=1, linear_init=self.linear_init)(
            jnp.concatenate([obs, action], -1)
        )


class _HyperQ(nn.Module):
    hidden_sizes: Sequence[int]
    init_mode: str
    variant: str
    latent_widths: Sequence[int]
    blocks_per_width: int
    state_is_meta: bool
    dtype: str

    @nn.compact
    def __call__(self, obs, action):
        meta, base = (obs, action) if self.state_is_meta else (action, obs)
        net = hyper.HyperNetwork(
            base.shape[-1],
            1,
            self.hidden_sizes,
            self.init_mode,
            self.variant,
            self.latent_widths,
            self.blocks_per_width,
            self.dtype,
            name="hyper",
        )
        return net(meta, base)


class _ResNetFeaturesQ(nn.Module):
    num_features: int
    hidden_sizes: Sequence[int]
    linear_init: str

    @nn.compact
    def __call__(self, obs, action):
        # SAC code: init_weights overwrites the embedding too, so every Linear is xavier/zero-bias.
        z = obs
        for width in hyper.LATENT_WIDTHS:
            z = layers.dense(width, z.shape[-1], self.linear_init)(z)
            for _ in range(2):
                z = _ResBlock(self.linear_init)(z)
        features = layers.dense(self.num_features, z.shape[-1], self.linear_init)(z)
        return layers.MLP(self.hidden_sizes, out_size=1, linear_init=self.linear_init)(
            jnp.concatenate([features, action], -1)
        )


class _ResBlock(nn.Module):
    linear_init: str

    @nn.compact
    def __call__(self, x):
        width = x.shape[-1]
        h = layers.dense(width, width, self.linear_init)(nn.relu(x))
        return x + layers.dense(width, width, self.linear_init)(nn.relu(h))


class _DeepResQ(nn.Module):
    width: int
    num_blocks: int
    linear_init: str

    @nn.compact
    def __call__(self, obs, action):
        sa = jnp.concatenate([obs, action], -1)
        x = layers.dense(self.width, sa.shape[-1], self.linear_init)(sa)
        for _ in range(self.num_blocks):
            x = _ResBlock(self.linear_init)(x)
        return layers.dense(1, self.width, self.linear_init)(nn.relu(x))


class _D2RLQ(nn.Module):
    width: int
    num_layers: int
    linear_init: str

    @nn.compact
    def __call__(self, obs, action):
        sa = jnp.concatenate([obs, action], -1)
        h = nn.relu(layers.dense(self.width, sa.shape[-1], self.linear_init)(sa))
        for _ in range(self.num_layers - 1):
            hsa = jnp.concatenate([h, sa], -1)
            h = nn.relu(layers.dense(self.width, hsa.shape[-1], self.linear_init)(hsa))
        return layers.dense(1, self.width, self.linear_init)(h)


class SAHyperCritic(_Critic):
    """SA-Hyper (the paper's choice): state -> dynamic weights, action -> dynamic network.

    Attributes:
      hidden_sizes: the dynamic network's hidden widths (paper: one layer of 256).
      init_mode: ``authors`` or ``kaiming`` (hyperjax.nn.init).
      latent_widths, blocks_per_width: the primary ResNet (paper: (256, 512, 1024), 2).
      dtype: compute dtype of the primary ResNet and the heads (``float32``; ``bfloat16``: mixed
        precision, parameters and gradients stay float32).
    """

    hidden_sizes: Sequence[int] = (256,)
    init_mode: str = "authors"
    latent_widths: Sequence[int] = hyper.LATENT_WIDTHS
    blocks_per_width: int = 2
    dtype: str = "float32"
    state_is_meta = True

    def q_network(self):
        return _HyperQ, dict(
            hidden_sizes=self.hidden_sizes,
            init_mode=self.init_mode,
            variant=self.variant,
            latent_widths=self.latent_widths,
            blocks_per_width=self.blocks_per_width,
            state_is_meta=self.state_is_meta,
            dtype=self.dtype,
        )


class ASHyperCritic(SAHyperCritic):
    """AS-Hyper: action -> dynamic weights, state -> dynamic network."""

    state_is_meta = False


class MLPCritic(_Critic):
    """``cat(s, a)`` -> ReLU MLP -> 1. Standard 2x256, small 1x256, large 2x2900."""

    hidden_sizes: Sequence[int] = (256, 256)

    def q_network(self):
        return _ConcatMLPQ, dict(hidden_sizes=self.hidden_sizes, linear_init=self.linear_init)


class ResNetFeaturesCritic(_Critic):
    """Primary ResNet on the state -> 10 features, concatenated with the action -> 1x256 MLP."""

    num_features: int = 10
    hidden_sizes: Sequence[int] = (256,)

    def q_network(self):
        return _ResNetFeaturesQ, dict(
            num_features=self.num_features, hidden_sizes=self.hidden_sizes, linear_init=self.linear_init
        )


class Res35Critic(_Critic):
    """``Linear(s+a, 256)``, 35 pre-activation residual blocks of 256, ReLU, ``Linear(256, 1)``."""

    width: int = 256
    num_blocks: int = 35

    def q_network(self):
        return _DeepResQ, dict(width=self.width, num_blocks=self.num_blocks, linear_init=self.linear_init)


class D2RLCritic(_Critic):
    """D2RL: 4 ReLU layers of 256, the (s, a) input concatenated to the input of layers 2-4."""

    width: int = 256
    num_layers: int = 4

    def q_network(self):
        return _D2RLQ, dict(width=self.width, num_layers=self.num_layers, linear_init=self.linear_init)


class CriticSpec(NamedTuple):
    """A registered critic: its module, preset sizes, and the authors' learning rate for it."""

    module: type[_Critic]
    preset: dict
    learning_rate: float  # SAC and TD3 code: 5e-5 for hypernetwork critics, 3e-4 otherwise


HYPER_LR, BASELINE_LR = 5e-5, 3e-4
CRITICS: dict[str, CriticSpec] = {
    "sa_hyper": CriticSpec(SAHyperCritic, {}, HYPER_LR),
    "as_hyper": CriticSpec(ASHyperCritic, {}, HYPER_LR),
    "mlp": CriticSpec(MLPCritic, {}, BASELINE_LR),
    "mlp_small": CriticSpec(MLPCritic, dict(hidden_sizes=(256,)), BASELINE_LR),
    "mlp_large": CriticSpec(MLPCritic, dict(hidden_sizes=(2900, 2900)), BASELINE_LR),
    "resnet_features": CriticSpec(ResNetFeaturesCritic, {}, BASELINE_LR),
    "res35": CriticSpec(Res35Critic, {}, BASELINE_LR),
    "d2rl": CriticSpec(D2RLCritic, {}, BASELINE_LR),
}
HYPER_CRITICS = tuple(name for name, spec in CRITICS.items() if issubclass(spec.module, SAHyperCritic))
# code base -> the plain layers' init (layers.LINEAR_INITS)
VARIANTS = {"sac": "xavier", "td3": "torch"}


def check_name(name: str) -> None:
    """Raises ValueError for an unregistered critic name, listing the valid ones."""
    if name not in CRITICS:
        raise ValueError(f"unknown critic {name!r}; valid: {', '.join(CRITICS)}")


def check_overrides(name: str, overrides: dict) -> None:
    """Raises ValueError (one line) unless ``overrides`` are fields of this critic with values of
    the right kind; checked before anything is built or compiled."""
    check_name(name)
    module = CRITICS[name].module
    fields = {f.name: f for f in dataclasses.fields(module) if f.name not in ("parent", "name", "action_size")}
    choices = {"variant": tuple(VARIANTS), "init_mode": hinit.INIT_MODES, "dtype": hyper.COMPUTE_DTYPES}
    for key, value in overrides.items():
        if key not in fields:
            raise ValueError(f"--critic_overrides: {name} has no field {key!r}; valid: {', '.join(sorted(fields))}")
        kind = str(fields[key].type)
        if key in choices and value not in choices[key]:
            raise ValueError(f"--critic_overrides: {key}={value!r} is not valid; valid: {', '.join(choices[key])}")
        if "Sequence" in kind:
            ok = isinstance(value, (tuple, list)) and all(type(v) is int and v >= 1 for v in value)
            expected = "a list of positive integers, e.g. [64, 64]"
        elif "int" in kind:
            least = 0 if "blocks" in key else 1  # a ResNet may have no blocks
            ok, expected = type(value) is int and value >= least, f"an integer >= {least}"
        else:
            ok, expected = isinstance(value, str), "a string"
        if not ok:
            raise ValueError(f"--critic_overrides: {key}={json.dumps(value)} must be {expected}")


def learning_rate(name: str, given: float | None = None) -> float:
    """``given`` if set, else the authors' learning rate for this critic."""
    check_name(name)
    return CRITICS[name].learning_rate if given is None else given


def make_critic(name: str, *, action_size: int, **overrides) -> nn.Module:
    """Builds a registered critic.

    Args:
      name: one of ``CRITICS``.
      action_size: width of the action input.
      **overrides: module attributes, e.g. ``num_critics=1``, ``hidden_sizes=(64,)`` or
        ``variant="td3"``.

    Returns:
      A linen module; ``init(key, obs [B, obs], action [B, act])``, ``apply -> q [num_critics, B]``.
    """
    check_name(name)
    if action_size < 1:
        raise ValueError(f"action_size must be >= 1, got {action_size}")
    spec = CRITICS[name]
    return spec.module(action_size=action_size, **{**spec.preset, **overrides})
