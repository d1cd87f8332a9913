"""PEARL's networks (Rakelly et al. 2019, as in the authors' oyster-based code): the context
encoder and the two actor-critic models, every network conditioned on a task latent ``z``.

* ``mlp``: Q(s, a, z) (twin), V(s, z) and the tanh-Gaussian policy(s, z), 3 x 300 ReLU MLPs with
  rlkit's initialisation (:class:`RlkitMLP`).
* ``hyper``: hypernetworks (the TD3/PEARL primary-network bound). The policy's meta variable is
  ``z`` and its base the state: its primary network runs once per task and the generated weights
  serve all of the task's states. Q's meta variable is the state and its base ``[a, z]``; V's meta
  variable is the state and its base ``z``.

The encoder maps each context transition ``(s, a, r)`` to a Gaussian factor over ``z`` (a mean
and a softplus variance); the posterior is their product (:func:`product_of_gaussians`).
"""

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from hyperjax.nn import hyper, layers, policies
from hyperjax.nn import init as hinit

MODELS = ("mlp", "hyper")
MIN_VARIANCE = 1e-7  # the authors' clamp of each factor's variance


class RlkitMLP(nn.Module):
    """rlkit's ``Mlp``: ReLU layers, then a linear output layer.

    Hidden weights ~ U(+-1/sqrt(out features)) (rlkit's ``fanin_init`` reads ``weight.size(0)``,
    the output width), hidden biases 0.1; the output layer's weights and biases ~ U(+-last_bound).
    """

    hidden_sizes: Sequence[int]
    out_size: int
    last_bound: float = 3e-3

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return _last_dense(self.out_size, self.last_bound)(rlkit_trunk(self.hidden_sizes, x))


def rlkit_trunk(hidden_sizes: Sequence[int], x: jax.Array) -> jax.Array:
    """rlkit's hidden layers (call inside a compact module)."""
    for width in hidden_sizes:
        kernel_init = hinit.uniform(1.0 / math.sqrt(width))
        x = nn.relu(nn.Dense(width, kernel_init=kernel_init, bias_init=nn.initializers.constant(0.1))(x))
    return x


def _last_dense(size: int, bound: float, name: str | None = None) -> nn.Dense:
    return nn.Dense(size, kernel_init=hinit.uniform(bound), bias_init=hinit.uniform(bound), name=name)


class RlkitPolicy(nn.Module):
    """rlkit's ``TanhGaussianPolicy`` on ``cat(obs, z)``: ``(mean, log_std)`` ``[B, act]``, heads U(+-1e-3)."""

    action_size: int
    hidden_sizes: Sequence[int]

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = rlkit_trunk(self.hidden_sizes, x)
        mean = _last_dense(self.action_size, 1e-3, name="mean")(h)
        log_std = _last_dense(self.action_size, 1e-3, name="log_std")(h)
        return mean, jnp.clip(log_std, policies.LOG_STD_MIN, policies.LOG_STD_MAX)


def product_of_gaussians(mean: jax.Array, variance: jax.Array, mask: jax.Array | None = None):
    """The normalised product of Gaussian factors over axis -2.

    Args:
      mean, variance: ``[..., N, z]`` per-transition factors (variances clamped >= 1e-7).
      mask: ``[..., N]`` 1.0 for the factors to use (default: all).

    Returns:
      ``(mean [..., z], variance [..., z])``: ``var = 1 / sum(1 / var_i)``, ``mean = var * sum(mean_i / var_i)``.
    """
    precision = 1.0 / jnp.maximum(variance, MIN_VARIANCE)
    if mask is not None:
        precision = precision * mask[..., None]
    total = jnp.sum(precision, axis=-2)
    var = 1.0 / total
    return var * jnp.sum(mean * precision, axis=-2), var


def kl_to_standard_normal(mean: jax.Array, variance: jax.Array) -> jax.Array:
    """``KL(N(mean, variance) || N(0, I))`` summed over every axis (tasks and latent dims)."""
    return 0.5 * jnp.sum(variance + mean**2 - 1.0 - jnp.log(variance))


class Networks(NamedTuple):
    """A PEARL model's pure functions; params are ``{'encoder'?, 'q', 'v', 'policy'}``.

    Attributes:
      init: ``key -> params`` (no ``encoder`` with ``encoder=False``: the oracle-context variant).
      encode: ``(params, context [..., N, s+a+r]) -> (mean, variance)`` ``[..., N, z]`` per transition.
      q: ``(params, obs [B, obs], action [B, act], z [B, z]) -> [2, B]`` (twin critics).
      v: ``(v_params, obs [B, obs], z [B, z]) -> [B]``: ``params['v']`` or the target V's.
      policy: ``(params, obs [B, obs], z [z]) -> (mean, log_std)`` ``[B, act]``: one task's
        states (the hyper policy generates its weights once from ``z``); it is
        ``policy_dist(policy_weights(params, z), obs)``.
      policy_weights: ``(params, z [z]) -> weights``: what the policy runs with on one task (made
        once per trajectory in rollouts).
      policy_dist: ``(weights, obs [B, obs]) -> (mean, log_std)``.
    """

    init: Callable[[jax.Array], dict]
    encode: Callable[[Any, jax.Array], tuple[jax.Array, jax.Array]]
    q: Callable
    v: Callable
    policy: Callable
    policy_weights: Callable
    policy_dist: Callable


def make_networks(
    model: str,
    obs_size: int,
    action_size: int,
    latent_size: int,
    *,
    encoder: bool = True,
    net_size: int = 300,
    encoder_hidden_sizes: Sequence[int] = (200, 200, 200),
    hyper_widths: Sequence[int] = hyper.LATENT_WIDTHS,
    hyper_hidden_sizes: Sequence[int] = (256,),
) -> Networks:
    """The ``model`` (one of ``MODELS``) at these sizes; ``latent_size``: z's width (5, or the
    oracle context's width)."""
    if model not in MODELS:
        raise ValueError(f"unknown PEARL model {model!r}; valid: {', '.join(MODELS)}")
    context_size = obs_size + action_size + 1
    encoder_net = RlkitMLP(tuple(encoder_hidden_sizes), 2 * latent_size)
    if model == "mlp":
        hidden = (net_size,) * 3
        q_net = layers.ensemble(RlkitMLP, 2, hidden_sizes=hidden, out_size=1)
        v_net = RlkitMLP(hidden, 1)
        policy_net = RlkitPolicy(action_size, hidden)

        def q_apply(p, obs, action, z):
            return q_net.apply(p, jnp.concatenate([obs, action, z], -1))[..., 0]

        def v_apply(p, obs, z):
            return v_net.apply(p, jnp.concatenate([obs, z], -1))[..., 0]

        def policy_weights(p, z):
            return p, z

        def policy_dist(weights, obs):
            p, z = weights
            return policy_net.apply(p, jnp.concatenate([obs, jnp.broadcast_to(z, (obs.shape[0], latent_size))], -1))

        inits = {
            "q": lambda k: q_net.init(k, jnp.zeros((1, obs_size + action_size + latent_size))),
            "v": lambda k: v_net.init(k, jnp.zeros((1, obs_size + latent_size))),
            "policy": lambda k: policy_net.init(k, jnp.zeros((1, obs_size + latent_size))),
        }
    else:
        kw = dict(hidden_sizes=tuple(hyper_hidden_sizes), variant="td3", widths=tuple(hyper_widths))
        q_net = layers.ensemble(hyper.HyperNetwork, 2, base_size=action_size + latent_size, out_size=1, **kw)
        v_net = hyper.HyperNetwork(latent_size, 1, **kw)
        policy_module = policies.HyperPolicy(action_size, log_std_mode="head", **kw)
        policy_net = policy_module.network(obs_size, parent=None)

        def q_apply(p, obs, action, z):
            return q_net.apply(p, obs, jnp.concatenate([action, z], -1))[..., 0]

        def v_apply(p, obs, z):
            return v_net.apply(p, obs, z)[..., 0]

        def policy_weights(p, z):
            generated = policy_net.apply(p, z[None], method="generate")
            return [hyper.DynamicLayer(*(x[0] for x in layer)) for layer in generated]  # one set per task

        def policy_dist(weights, obs):
            out = hyper.apply_dynamic(weights, obs)
            log_std = jnp.clip(out[:, action_size:], policies.LOG_STD_MIN, policies.LOG_STD_MAX)
            return out[:, :action_size], log_std

        inits = {
            "q": lambda k: q_net.init(k, jnp.zeros((1, obs_size)), jnp.zeros((1, action_size + latent_size))),
            "v": lambda k: v_net.init(k, jnp.zeros((1, obs_size)), jnp.zeros((1, latent_size))),
            "policy": lambda k: policy_net.init(k, jnp.zeros((1, latent_size)), jnp.zeros((1, obs_size))),
        }
    if encoder:
        inits["encoder"] = lambda k: encoder_net.init(k, jnp.zeros((1, context_size)))

    def init(key):
        keys = dict(zip(sorted(inits), jax.random.split(key, len(inits)), strict=True))
        return {name: fn(keys[name]) for name, fn in inits.items()}

    def encode(p, context):
        out = encoder_net.apply(p["encoder"], context)
        return out[..., :latent_size], jax.nn.softplus(out[..., latent_size:])

    return Networks(
        init=init,
        encode=encode,
        q=lambda p, obs, action, z: q_apply(p["q"], obs, action, z),
        v=v_apply,
        policy=lambda p, obs, z: policy_dist(policy_weights(p["policy"], z), obs),
        policy_weights=lambda p, z: policy_weights(p["policy"], z),
        policy_dist=policy_dist,
    )
