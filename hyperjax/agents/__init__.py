"""Agents: each algorithm as pure functions over a training-state pytree, with its registry entry.

``sac``, ``td3`` (off-policy, trained by ``hyperjax.train.offpolicy``), ``maml`` (MAML-TRPO) and
``pearl`` (PEARL), each ending in its ``ALGORITHM``; ``registry`` (``ALGORITHMS``, ``get``: the only
list of them). The shared pieces: ``base`` (the ``Agent`` and ``Algorithm`` contracts, re-exported
from ``hyperjax.train.contract``; SAC's and TD3's common config), ``td`` (TD targets and losses for
SAC and TD3), ``pg`` (policy-gradient maths: baseline, returns, GAE, Gaussian log-prob and KL) and
``trpo`` (conjugate gradient, Fisher-vector products, the TRPO step).
"""
