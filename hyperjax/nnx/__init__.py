"""hyperjax.nnx: the module library for ``flax.nnx`` - hypernetworks, critics, policies, PEARL's networks.

Each module runs its :mod:`hyperjax.nn` (linen) counterpart through ``flax.nnx.bridge``: one implementation
of the maths, the same parameter trees, equal outputs and gradients (see ``hyperjax/nnx/modules.py``)::

    from flax import nnx
    import hyperjax.nnx

    critic = hyperjax.nnx.SAHyperCritic(obs_size=27, action_size=8, rngs=nnx.Rngs(0))
    q = critic(obs, action)  # [2, B]

The plain functions (``apply_dynamic``, ``tanh_gaussian``, ``product_of_gaussians``, ...) need no nnx
version; they are re-exported here for convenience.
"""

from hyperjax.nn.hyper import DynamicLayer, apply_dynamic
from hyperjax.nn.pearl import kl_to_standard_normal, product_of_gaussians
from hyperjax.nn.policies import sample_tanh_gaussian, tanh_gaussian
from hyperjax.nnx.modules import (
    CRITIC_CLASSES,
    POLICIES,
    ASHyperCritic,
    ContextMLPPolicy,
    D2RLCritic,
    DeterministicPolicy,
    FromLinen,
    HyperNetwork,
    HyperPolicy,
    MLPCritic,
    PEARLNetworks,
    PrimaryNetwork,
    Res35Critic,
    ResNetFeaturesCritic,
    RlkitMLP,
    RlkitPolicy,
    SAHyperCritic,
    TanhGaussianPolicy,
    WeightGenerator,
    make_critic,
)

__all__ = [
    "CRITIC_CLASSES",
    "POLICIES",
    "ASHyperCritic",
    "ContextMLPPolicy",
    "D2RLCritic",
    "DeterministicPolicy",
    "DynamicLayer",
    "FromLinen",
    "HyperNetwork",
    "HyperPolicy",
    "MLPCritic",
    "PEARLNetworks",
    "PrimaryNetwork",
    "Res35Critic",
    "ResNetFeaturesCritic",
    "RlkitMLP",
    "RlkitPolicy",
    "SAHyperCritic",
    "TanhGaussianPolicy",
    "WeightGenerator",
    "apply_dynamic",
    "kl_to_standard_normal",
    "make_critic",
    "product_of_gaussians",
    "sample_tanh_gaussian",
    "tanh_gaussian",
]
