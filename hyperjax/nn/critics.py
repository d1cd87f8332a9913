"""Q critics with one contract: ``q = module.apply(variables, obs [B, obs], action [B, act])``,
``q`` of shape ``[num_critics, B]`` (twin critics by default, fully independent parameters
stacked on a leading axis of every leaf).

Build them by name with :func:`make_critic`. Sizes follow PAPER_FACTS.md section 2.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from hyperjax.nn import hyper, layers


class _Critic(nn.Module):
    """Shared contract: checks inputs, runs ``num_critics`` copies of ``q_network()``."""

    action_size: int
    num_critics: int = 2

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

    @nn.compact
    def __call__(self, obs, action):
        return layers.MLP(self.hidden_sizes, out_size=1)(jnp.concatenate([obs, action], -1))


class _HyperQ(nn.Module):
    hidden_sizes: Sequence[int]
    init_mode: str
    variant: str
    latent_widths: Sequence[int]
    blocks_per_width: int
    state_is_meta: bool

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
            name="hyper",
        )
        return net(meta, base)


class _ResNetFeaturesQ(nn.Module):
    num_features: int
    hidden_sizes: Sequence[int]

    @nn.compact
    def __call__(self, obs, action):
        # SAC code: init_weights overwrites the embedding too, so every Linear is xavier/zero-bias.
        z = obs
        for width in hyper.LATENT_WIDTHS:
            z = nn.Dense(width, **layers.xavier_dense_kwargs)(z)
            for _ in range(2):
                z = _XavierResBlock()(z)
        features = nn.Dense(self.num_features, **layers.xavier_dense_kwargs)(z)
        return layers.MLP(self.hidden_sizes, out_size=1)(jnp.concatenate([features, action], -1))


class _XavierResBlock(nn.Module):
    @nn.compact
    def __call__(self, x):
        width = x.shape[-1]
        h = nn.Dense(width, **layers.xavier_dense_kwargs)(nn.relu(x))
        return x + nn.Dense(width, **layers.xavier_dense_kwargs)(nn.relu(h))


class _DeepResQ(nn.Module):
    width: int
    num_blocks: int

    @nn.compact
    def __call__(self, obs, action):
        x = nn.Dense(self.width, **layers.xavier_dense_kwargs)(jnp.concatenate([obs, action], -1))
        for _ in range(self.num_blocks):
            x = _XavierResBlock()(x)
        return nn.Dense(1, **layers.xavier_dense_kwargs)(nn.relu(x))


class _D2RLQ(nn.Module):
    width: int
    num_layers: int

    @nn.compact
    def __call__(self, obs, action):
        sa = jnp.concatenate([obs, action], -1)
        h = nn.relu(nn.Dense(self.width, **layers.xavier_dense_kwargs)(sa))
        for _ in range(self.num_layers - 1):
            h = nn.relu(nn.Dense(self.width, **layers.xavier_dense_kwargs)(jnp.concatenate([h, sa], -1)))
        return nn.Dense(1, **layers.xavier_dense_kwargs)(h)


class SAHyperCritic(_Critic):
    """SA-Hyper (the paper's choice): state -> dynamic weights, action -> dynamic network.

    Attributes:
      hidden_sizes: the dynamic network's hidden widths (paper: one layer of 256).
      init_mode: ``authors`` or ``kaiming`` (hyperjax.nn.init).
      variant: primary-network init bound, ``sac`` or ``td3``.
      latent_widths, blocks_per_width: the primary ResNet (paper: (256, 512, 1024), 2).
    """

    hidden_sizes: Sequence[int] = (256,)
    init_mode: str = "authors"
    variant: str = "sac"
    latent_widths: Sequence[int] = hyper.LATENT_WIDTHS
    blocks_per_width: int = 2
    state_is_meta = True

    def q_network(self):
        return _HyperQ, dict(
            hidden_sizes=self.hidden_sizes,
            init_mode=self.init_mode,
            variant=self.variant,
            latent_widths=self.latent_widths,
            blocks_per_width=self.blocks_per_width,
            state_is_meta=self.state_is_meta,
        )


class ASHyperCritic(SAHyperCritic):
    """AS-Hyper: action -> dynamic weights, state -> dynamic network."""

    state_is_meta = False


class MLPCritic(_Critic):
    """``cat(s, a)`` -> ReLU MLP -> 1. Standard 2x256, small 1x256, large 2x2900."""

    hidden_sizes: Sequence[int] = (256, 256)

    def q_network(self):
        return _ConcatMLPQ, dict(hidden_sizes=self.hidden_sizes)


class ResNetFeaturesCritic(_Critic):
    """Primary ResNet on the state -> 10 features, concatenated with the action -> 1x256 MLP."""

    num_features: int = 10
    hidden_sizes: Sequence[int] = (256,)

    def q_network(self):
        return _ResNetFeaturesQ, dict(num_features=self.num_features, hidden_sizes=self.hidden_sizes)


class Res35Critic(_Critic):
    """``Linear(s+a, 256)``, 35 pre-activation residual blocks of 256, ReLU, ``Linear(256, 1)``."""

    width: int = 256
    num_blocks: int = 35

    def q_network(self):
        return _DeepResQ, dict(width=self.width, num_blocks=self.num_blocks)


class D2RLCritic(_Critic):
    """D2RL: 4 ReLU layers of 256, the (s, a) input concatenated to the input of layers 2-4."""

    width: int = 256
    num_layers: int = 4

    def q_network(self):
        return _D2RLQ, dict(width=self.width, num_layers=self.num_layers)


CRITICS: dict[str, tuple[type[_Critic], dict]] = {
    "sa_hyper": (SAHyperCritic, {}),
    "as_hyper": (ASHyperCritic, {}),
    "mlp": (MLPCritic, {}),
    "mlp_small": (MLPCritic, dict(hidden_sizes=(256,))),
    "mlp_large": (MLPCritic, dict(hidden_sizes=(2900, 2900))),
    "resnet_features": (ResNetFeaturesCritic, {}),
    "res35": (Res35Critic, {}),
    "d2rl": (D2RLCritic, {}),
}
HYPER_CRITICS = ("sa_hyper", "as_hyper")


def check_name(name: str) -> None:
    """Raises ValueError for an unregistered critic name, listing the valid ones."""
    if name not in CRITICS:
        raise ValueError(f"unknown critic {name!r}; valid: {', '.join(CRITICS)}")


def make_critic(name: str, *, action_size: int, **overrides) -> nn.Module:
    """Builds a registered critic.

    Args:
      name: one of ``CRITICS``.
      action_size: width of the action input.
      **overrides: module attributes, e.g. ``num_critics=1`` or ``hidden_sizes=(64,)``.

    Returns:
      A linen module; ``init(key, obs [B, obs], action [B, act])``, ``apply -> q [num_critics, B]``.
    """
    check_name(name)
    if action_size < 1:
        raise ValueError(f"action_size must be >= 1, got {action_size}")
    cls, preset = CRITICS[name]
    return cls(action_size=action_size, **{**preset, **overrides})
