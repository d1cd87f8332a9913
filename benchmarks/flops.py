"""Analytic FLOP counts of one update (multiply-adds x 2), per model.

F = multiply-adds of one Q network's forward pass for one sample = the entries of every weight
matrix it applies (kernels; biases and elementwise ops are ignored), plus, for hypernetworks,
the per-sample dynamic network. One SAC update per sample (counted from the authors' code): target twin forward
(2F), online twin forward + backward (6F), actor step: twin forward with the updated critic
(2F; for SA-Hyper the backward runs only through the dynamic net, counted as negligible; for
other critics the backward to the action costs another ~2F), plus the policy network's passes.
"""

import jax
import jax.numpy as jnp

from hyperjax.nn import critics, policies


def _kernel_macs(params) -> int:
    return sum(int(x.size) for x in jax.tree.leaves(params) if x.ndim >= 2)


def q_forward_macs(critic: str, obs: int, act: int) -> int:
    module = critics.make_critic(critic, action_size=act, num_critics=1)
    shapes = jax.eval_shape(module.init, jax.random.key(0), jnp.zeros((1, obs)), jnp.zeros((1, act)))
    macs = _kernel_macs(shapes)
    if critic in critics.HYPER_CRITICS:
        base = act if critic == "sa_hyper" else obs
        macs += base * 256 + 256  # the generated 1x256 dynamic network
    return macs


def policy_forward_macs(obs: int, act: int) -> int:
    shapes = jax.eval_shape(policies.TanhGaussianPolicy(action_size=act).init, jax.random.key(0), jnp.zeros((1, obs)))
    return _kernel_macs(shapes)


def update_flops(algo: str, critic: str, obs: int, act: int, batch: int) -> float:
    f = q_forward_macs(critic, obs, act)
    p = policy_forward_macs(obs, act)
    actor_backward = 0 if critic == "sa_hyper" else 2 * f
    if algo == "sac":
        # target 2F + online 6F + actor 2F (+ its backward); policy: next-obs fwd, obs fwd+bwd
        macs = 10 * f + actor_backward + p + 3 * p
    else:
        # TD3 at an actor step: target 2F + online 6F + actor Q1 fwd F (+ backward); policy
        # target fwd + fwd/bwd
        macs = 9 * f + actor_backward // 2 + p + 3 * p
    return 2.0 * macs * batch
