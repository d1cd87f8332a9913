"""hyperjax.nn: the Flax (linen) module library - hypernetworks, critics, policies."""

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
    "POLICIES",
    "ASHyperCritic",
    "ContextMLPPolicy",
    "D2RLCritic",
    "DeterministicPolicy",
    "DynamicLayer",
    "HyperNetwork",
    "HyperPolicy",
    "MLPCritic",
    "PrimaryNetwork",
    "Res35Critic",
    "ResNetFeaturesCritic",
    "SAHyperCritic",
    "TanhGaussianPolicy",
    "WeightGenerator",
    "apply_dynamic",
    "count_params",
    "make_critic",
    "sample_tanh_gaussian",
    "tanh_gaussian",
]
