"""hyperjax.nn: the Flax (linen) module library - hypernetworks, critics, policies, PEARL's networks.

The same modules for ``flax.nnx`` are in :mod:`hyperjax.nnx`; docs/library.md shows both.
"""

from hyperjax.nn.critics import (
    CRITICS,
    HYPER_CRITICS,
    ASHyperCritic,
    D2RLCritic,
    MLPCritic,
    Res35Critic,
    ResNetFeaturesCritic,
    SAHyperCritic,
    make_critic,
)
from hyperjax.nn.hyper import DynamicLayer, HyperNetwork, PrimaryNetwork, WeightGenerator, apply_dynamic
from hyperjax.nn.pearl import MODELS as PEARL_MODELS
from hyperjax.nn.pearl import Networks as PEARLNetworks
from hyperjax.nn.pearl import (
    RlkitMLP,
    RlkitPolicy,
    kl_to_standard_normal,
    product_of_gaussians,
)
from hyperjax.nn.pearl import make_networks as make_pearl_networks
from hyperjax.nn.policies import (
    POLICIES,
    ContextMLPPolicy,
    DeterministicPolicy,
    HyperPolicy,
    TanhGaussianPolicy,
    sample_tanh_gaussian,
    tanh_gaussian,
)
from hyperjax.nn.summary import count_params

__all__ = [
    "CRITICS",
    "HYPER_CRITICS",
    "PEARL_MODELS",
    "POLICIES",
    "ASHyperCritic",
    "ContextMLPPolicy",
    "D2RLCritic",
    "DeterministicPolicy",
    "DynamicLayer",
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
    "count_params",
    "kl_to_standard_normal",
    "make_critic",
    "make_pearl_networks",
    "product_of_gaussians",
    "sample_tanh_gaussian",
    "tanh_gaussian",
]
