"""The ``flax.nnx`` modules: each one runs its ``hyperjax.nn`` (linen) counterpart on parameters it holds.

Design: one implementation of the maths. Every class here is a thin ``flax.nnx.bridge.ToNNX`` around
the linen module of the same name, so the hypernetwork, the critics and the policies exist once (in
:mod:`hyperjax.nn`), the nnx parameters have the linen tree layout (a linen checkpoint's
``params`` load as they are, see :meth:`FromLinen.load_linen_params`) and nnx and linen give the same
outputs and gradients by construction (``tests/test_nnx.py`` checks it per module).

An nnx module is built eagerly, so it needs its input widths (linen infers them at ``init``): e.g.
``SAHyperCritic(obs_size=27, action_size=8, rngs=nnx.Rngs(0))``. Every other keyword is the linen
module's attribute of that name (``hidden_sizes``, ``init_mode``, ``variant``, ``num_critics``, ...).
After construction a module holds only ``nnx.Param`` state (no RNG state: none of the modules draws
random numbers when called).
"""

from collections.abc import Sequence
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import nnx
from flax.nnx import bridge

from hyperjax.nn import critics, hyper, pearl, policies


def _example(width: int) -> jax.Array:
    return jnp.zeros((1, width), jnp.float32)


def _is_variable(x) -> bool:
    return isinstance(x, nnx.Variable)


def _shape(x) -> tuple:
    return tuple(x.shape) if hasattr(x, "shape") else jnp.shape(x)


def _check_same_tree(what: str, expected, given) -> None:
    """ValueError naming the first path whose presence or shape differs."""
    want = {jax.tree_util.keystr(p): _shape(x) for p, x in jax.tree_util.tree_leaves_with_path(expected)}
    got = {jax.tree_util.keystr(p): _shape(x) for p, x in jax.tree_util.tree_leaves_with_path(given)}
    for path in sorted(want.keys() | got.keys()):
        if path not in got:
            raise ValueError(f"{what}: parameter {path} is missing")
        if path not in want:
            raise ValueError(f"{what}: unexpected parameter {path}")
        if want[path] != got[path]:
            raise ValueError(f"{what}: parameter {path} has shape {got[path]}, expected {want[path]}")


def _pure(variables) -> Any:
    """A tree of ``nnx.Variable`` -> the same tree of their arrays (traced under ``nnx.grad``/``nnx.jit``)."""
    return jax.tree.map(lambda v: v.get_value(), variables, is_leaf=_is_variable)


def _assign(variables, values) -> None:
    """Writes ``values`` (a tree of arrays) into the matching ``nnx.Variable`` leaves of ``variables``."""
    jax.tree.map(lambda v, x: v.set_value(jnp.asarray(x, v.dtype)), variables, values, is_leaf=_is_variable)


class FromLinen(bridge.ToNNX):
    """An nnx module that runs a linen module on its own ``nnx.Param`` state.

    Args:
      module: the linen module (its attributes are the configuration).
      *example_inputs: inputs of the right widths (``[1, width]``); only their shapes are used.
      rngs: the initialisation's keys (its ``params`` stream, else ``default``).
    """

    def __init__(self, module: nn.Module, *example_inputs: jax.Array, rngs: nnx.Rngs):
        super().__init__(module, rngs=rngs)
        bridge.lazy_init(self, *example_inputs)
        self.to_nnx__rngs = None  # deterministic modules: only parameters remain as state

    @property
    def linen(self) -> nn.Module:
        """The linen module this one runs (use it with ``linen_params()`` for ``apply``)."""
        return self.to_nnx__module

    def _run(self, *args, method=None) -> Any:
        return bridge.ToNNX.__call__(self, *args, method=method)

    def linen_params(self) -> dict:
        """The parameters as the linen module's ``params`` collection (a plain dict of arrays):
        ``module.linen.apply({'params': module.linen_params()}, ...)`` equals ``module(...)``."""
        return nnx.to_pure_dict(nnx.state(self, nnx.Param))

    def load_linen_params(self, params: dict) -> None:
        """Copies in a linen ``params`` tree (or ``{'params': ...}`` variables), e.g. a trained agent's.

        Raises:
          ValueError: a parameter missing, unexpected or of another shape (naming its path).
        """
        if set(params) == {"params"}:
            params = params["params"]
        state = nnx.state(self, nnx.Param)
        _check_same_tree(type(self).__name__, nnx.to_pure_dict(state), params)
        nnx.replace_by_pure_dict(state, jax.tree.map(jnp.asarray, params))
        nnx.update(self, state)


# ----------------------------------------------------------------------------------------------------------------
# the hypernetwork


class PrimaryNetwork(FromLinen):
    """:class:`hyperjax.nn.PrimaryNetwork`: meta ``[B, meta_size]`` -> latent ``[B, widths[-1]]``."""

    def __init__(self, meta_size: int, *, rngs: nnx.Rngs, **config):
        super().__init__(hyper.PrimaryNetwork(**config), _example(meta_size), rngs=rngs)

    def __call__(self, meta: jax.Array) -> jax.Array:
        return self._run(meta)


class WeightGenerator(FromLinen):
    """:class:`hyperjax.nn.WeightGenerator`: meta ``[B, meta_size]`` -> a :class:`hyperjax.nn.DynamicLayer`
    per dynamic layer (``w [B, in, out]``, ``b, g [B, out]``); run them with :func:`hyperjax.nn.apply_dynamic`.

    Keywords: ``hidden_sizes``, ``init_mode`` (``authors``/``kaiming``), ``variant``, ``widths``,
    ``blocks_per_width``, ``dtype``, ``param_dtype``.
    """

    def __init__(self, meta_size: int, base_size: int, out_size: int, *, rngs: nnx.Rngs, **config):
        module = hyper.WeightGenerator(base_size=base_size, out_size=out_size, **config)
        super().__init__(module, _example(meta_size), rngs=rngs)

    def __call__(self, meta: jax.Array) -> list[hyper.DynamicLayer]:
        return self._run(meta)


class HyperNetwork(FromLinen):
    """:class:`hyperjax.nn.HyperNetwork`: ``f(meta [B, meta_size], base [B, base_size]) -> [B, out_size]``.

    Keywords as :class:`WeightGenerator`. Its parameters are ``generator/primary/...`` and
    ``generator/head_<i>/{kernel,bias}``, as the linen module's.
    """

    def __init__(self, meta_size: int, base_size: int, out_size: int, *, rngs: nnx.Rngs, **config):
        module = hyper.HyperNetwork(base_size=base_size, out_size=out_size, **config)
        super().__init__(module, _example(meta_size), _example(base_size), rngs=rngs)

    def __call__(self, meta: jax.Array, base: jax.Array) -> jax.Array:
        return self._run(meta, base)

    def generate(self, meta: jax.Array) -> list[hyper.DynamicLayer]:
        """The generated dynamic weights for each sample (``apply_dynamic(generate(meta), base)`` is the call)."""
        return self._run(meta, method="generate")


# ----------------------------------------------------------------------------------------------------------------
# critics


class _Critic(FromLinen):
    """``critic(obs [B, obs_size], action [B, action_size]) -> q [num_critics, B]`` (twin by default).

    Keywords: the linen critic's attributes (``num_critics``, ``variant``, and the critic's sizes).
    """

    linen_class: ClassVar[type[critics._Critic]]

    def __init__(self, obs_size: int, action_size: int, *, rngs: nnx.Rngs, **config):
        module = self.linen_class(action_size=action_size, **config)
        super().__init__(module, _example(obs_size), _example(action_size), rngs=rngs)

    def __call__(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        return self._run(obs, action)


class SAHyperCritic(_Critic):
    """:class:`hyperjax.nn.SAHyperCritic` (state -> weights, action -> dynamic network); ``init_mode``
    ``authors`` (default) or ``kaiming``."""

    linen_class = critics.SAHyperCritic


class ASHyperCritic(_Critic):
    """:class:`hyperjax.nn.ASHyperCritic` (action -> weights, state -> dynamic network)."""

    linen_class = critics.ASHyperCritic


class MLPCritic(_Critic):
    """:class:`hyperjax.nn.MLPCritic`: ``cat(s, a)`` -> ReLU MLP -> 1."""

    linen_class = critics.MLPCritic


class ResNetFeaturesCritic(_Critic):
    """:class:`hyperjax.nn.ResNetFeaturesCritic`."""

    linen_class = critics.ResNetFeaturesCritic


class Res35Critic(_Critic):
    """:class:`hyperjax.nn.Res35Critic`."""

    linen_class = critics.Res35Critic


class D2RLCritic(_Critic):
    """:class:`hyperjax.nn.D2RLCritic`."""

    linen_class = critics.D2RLCritic


# linen critic class -> its nnx class (every module in ``hyperjax.nn.CRITICS`` has one: tests/test_nnx.py)
_NNX_CRITICS = (SAHyperCritic, ASHyperCritic, MLPCritic, ResNetFeaturesCritic, Res35Critic, D2RLCritic)
CRITIC_CLASSES: dict[type, type[_Critic]] = {cls.linen_class: cls for cls in _NNX_CRITICS}


def make_critic(name: str, *, obs_size: int, action_size: int, rngs: nnx.Rngs, **overrides) -> _Critic:
    """The registered critic ``name`` (``hyperjax.nn.CRITICS``: its preset sizes, then ``overrides``) as nnx."""
    critics.check_name(name)
    spec = critics.CRITICS[name]
    return CRITIC_CLASSES[spec.module](obs_size, action_size, rngs=rngs, **{**spec.preset, **overrides})


# ----------------------------------------------------------------------------------------------------------------
# policies


class TanhGaussianPolicy(FromLinen):
    """:class:`hyperjax.nn.TanhGaussianPolicy` (SAC): ``obs [B, obs_size]`` -> ``(mean, log_std)`` ``[B, act]``."""

    def __init__(self, obs_size: int, action_size: int, *, rngs: nnx.Rngs, **config):
        super().__init__(policies.TanhGaussianPolicy(action_size, **config), _example(obs_size), rngs=rngs)

    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        return self._run(obs)


class DeterministicPolicy(FromLinen):
    """:class:`hyperjax.nn.DeterministicPolicy` (TD3): ``obs [B, obs_size]`` -> ``tanh(MLP(obs)) [B, act]``."""

    def __init__(self, obs_size: int, action_size: int, *, rngs: nnx.Rngs, **config):
        super().__init__(policies.DeterministicPolicy(action_size, **config), _example(obs_size), rngs=rngs)

    def __call__(self, obs: jax.Array) -> jax.Array:
        return self._run(obs)


class HyperPolicy(FromLinen):
    """:class:`hyperjax.nn.HyperPolicy`: ``(obs [B, obs_size], context [B, context_size])`` -> ``(mean, log_std)``.

    Keywords: ``hidden_sizes``, ``init_mode``, ``variant`` (default ``td3``), ``log_std_mode``
    (``global``/``head``), ``widths``, ``blocks_per_width``.
    """

    def __init__(self, obs_size: int, context_size: int, action_size: int, *, rngs: nnx.Rngs, **config):
        module = policies.HyperPolicy(action_size, **config)
        super().__init__(module, _example(obs_size), _example(context_size), rngs=rngs)
        self.to_nnx__obs_size = obs_size  # ToNNX's prefix: a setting, not a variable

    def __call__(self, obs: jax.Array, context: jax.Array) -> tuple[jax.Array, jax.Array]:
        return self._run(obs, context)

    def generate(self, context: jax.Array) -> list[hyper.DynamicLayer]:
        """The dynamic network's weights per context row (the mean, then with ``log_std_mode='head'`` the
        log-std, are ``apply_dynamic(weights, obs)``'s columns)."""
        network = self.linen.network(self.to_nnx__obs_size, parent=None)
        return network.apply({"params": self.linen_params()["hyper"]}, context, method="generate")


class ContextMLPPolicy(FromLinen):
    """:class:`hyperjax.nn.ContextMLPPolicy`: ``cat(obs, context)`` -> ``(mean, log_std)``."""

    def __init__(self, obs_size: int, context_size: int, action_size: int, *, rngs: nnx.Rngs, **config):
        module = policies.ContextMLPPolicy(action_size, **config)
        super().__init__(module, _example(obs_size), _example(context_size), rngs=rngs)

    def __call__(self, obs: jax.Array, context: jax.Array) -> tuple[jax.Array, jax.Array]:
        return self._run(obs, context)


POLICIES = {
    "tanh_gaussian": TanhGaussianPolicy,
    "deterministic": DeterministicPolicy,
    "hyper": HyperPolicy,
    "context_mlp": ContextMLPPolicy,
}


# ----------------------------------------------------------------------------------------------------------------
# PEARL


class RlkitMLP(FromLinen):
    """:class:`hyperjax.nn.RlkitMLP`: ``[B, in_size]`` -> ``[B, out_size]`` with rlkit's init."""

    def __init__(
        self, in_size: int, hidden_sizes: Sequence[int], out_size: int, *, rngs: nnx.Rngs, last_bound: float = 3e-3
    ):
        super().__init__(pearl.RlkitMLP(tuple(hidden_sizes), out_size, last_bound), _example(in_size), rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self._run(x)


class RlkitPolicy(FromLinen):
    """:class:`hyperjax.nn.RlkitPolicy`: ``[B, in_size]`` -> ``(mean, log_std)`` ``[B, act]``."""

    def __init__(self, in_size: int, action_size: int, hidden_sizes: Sequence[int], *, rngs: nnx.Rngs):
        super().__init__(pearl.RlkitPolicy(action_size, tuple(hidden_sizes)), _example(in_size), rngs=rngs)

    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        return self._run(x)


class PEARLNetworks(nnx.Module):
    """A PEARL model's networks (:func:`hyperjax.nn.make_pearl_networks`) with their parameters as nnx state.

    ``self.params`` is the dict PEARL's agent state keeps (``{'encoder'?, 'q', 'v', 'policy'}``, each
    linen variables), held as ``nnx.Param`` leaves; the methods call the model's pure functions on it.

    Args:
      model: ``mlp`` or ``hyper`` (``hyperjax.nn.pearl.MODELS``).
      obs_size, action_size, latent_size: the widths (``latent_size``: z's).
      rngs: the initialisation's keys.
      **options: :func:`hyperjax.nn.make_pearl_networks`'s keywords (``encoder``, ``net_size``,
        ``encoder_hidden_sizes``, ``hyper_widths``, ``hyper_hidden_sizes``).
    """

    def __init__(self, model: str, obs_size: int, action_size: int, latent_size: int, *, rngs: nnx.Rngs, **options):
        self.functions = pearl.make_networks(model, obs_size, action_size, latent_size, **options)
        params = self.functions.init(rngs.params())
        self.params = nnx.data(jax.tree.map(nnx.Param, params))

    def linen_params(self) -> dict:
        """The parameters as plain arrays, in the layout of PEARL's agent state (``PEARLState.params``)."""
        return _pure(self.params)

    def load_linen_params(self, params: dict) -> None:
        """Copies in a params dict of that layout, e.g. a trained PEARL agent's."""
        _check_same_tree(type(self).__name__, self.linen_params(), params)
        _assign(self.params, params)

    def encode(self, context: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``context [..., N, s+a+r]`` -> per-transition Gaussian factors ``(mean, variance)`` ``[..., N, z]``."""
        return self.functions.encode(self.linen_params(), context)

    def q(self, obs: jax.Array, action: jax.Array, z: jax.Array) -> jax.Array:
        """Twin Q: ``[2, B]``."""
        return self.functions.q(self.linen_params(), obs, action, z)

    def v(self, obs: jax.Array, z: jax.Array) -> jax.Array:
        """V: ``[B]``."""
        return self.functions.v(self.linen_params()["v"], obs, z)

    def policy(self, obs: jax.Array, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        """One task's states ``obs [B, obs]`` and its latent ``z [z]`` -> ``(mean, log_std)`` ``[B, act]``."""
        return self.functions.policy(self.linen_params(), obs, z)

    def policy_weights(self, z: jax.Array):
        """What the policy runs with on one task (``policy_dist(policy_weights(z), obs)`` is ``policy``)."""
        return self.functions.policy_weights(self.linen_params(), z)

    def policy_dist(self, weights, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        return self.functions.policy_dist(weights, obs)
