"""Analytic FLOP counts of one update (multiply-adds x 2), per model.

F = multiply-adds of one Q network's forward pass for one sample = the entries of every weight
matrix it applies (kernels; biases and elementwise ops are ignored), plus, for hypernetworks,
the per-sample dynamic network. One SAC update per sample (counted from the authors' code): target twin forward
(2F), online twin forward + backward (6F), actor step: twin forward with the updated critic
(2F; for SA-Hyper the backward runs only through the dynamic net, counted as negligible; for
other critics the backward to the action costs another ~2F), plus the policy network's passes.

The compiled program's own count: ``hlo_dots`` finds every f32 ``dot`` of an optimised HLO module
and ``dot_flops`` counts one (``cases.update_floor`` times each alone).
"""

import re

import jax
import jax.numpy as jnp
import numpy as np

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


def pearl_step_flops(
    model: str, obs: int, act: int, latent: int = 5, meta_batch: int = 16, batch: int = 256, context_batch: int = 100
) -> float:
    """One PEARL gradient step (``agents.pearl``), per the authors' sizes.

    Per RL sample: twin Q forward + backward (6F_q), target V forward (F_v), twin Q forward with
    the updated Q on the policy's actions (2F_q; the backward to the action is counted as 2F_q for
    the MLP and as negligible for the hyper Q, whose action enters only the dynamic network),
    V forward + backward (3F_v), the policy forward + backward (3P: for the hyper policy only its
    per-sample dynamic network, its primary network running once per task, 3x per task).
    Per context transition: the encoder forward + backward (3E).
    """
    from hyperjax.nn import pearl

    nets = pearl.make_networks(model, obs, act, latent)
    shapes = jax.eval_shape(nets.init, jax.random.key(0))
    f_q, f_v = _kernel_macs(shapes["q"]) // 2, _kernel_macs(shapes["v"])
    encoder, policy = _kernel_macs(shapes["encoder"]), _kernel_macs(shapes["policy"])
    if model == "hyper":
        f_q += (act + latent) * 256 + 256
        f_v += latent * 256 + 256
        per_sample_policy, per_task_policy = obs * 256 + 256 * 2 * act, 3 * policy
        actor_backward = 0
    else:
        per_sample_policy, per_task_policy = policy, 0
        actor_backward = 2 * f_q
    per_sample = 8 * f_q + actor_backward + 4 * f_v + 3 * per_sample_policy
    macs = meta_batch * (batch * per_sample + per_task_policy + context_batch * 3 * encoder)
    return 2.0 * macs


_DOT_DIMS = ("lhs_batch_dims", "lhs_contracting_dims", "rhs_batch_dims", "rhs_contracting_dims")


def hlo_dots(text: str) -> list[tuple]:
    """Every f32 ``dot`` of an optimised HLO module (fusions included) as
    ``(lhs_shape, rhs_shape, lhs_batch, lhs_contracting, rhs_batch, rhs_contracting)``."""

    def dims(attrs: str, key: str) -> tuple:
        found = re.search(key + r"=\{([0-9,]*)\}", attrs)
        return tuple(int(x) for x in found.group(1).split(",") if x) if found else ()

    dots = []
    for computation in text.split("\n\n"):
        shapes = {
            name: tuple(int(x) for x in shape.split(",") if x)
            for name, shape in re.findall(r"%?([\w.\-]+)(?::| =) f32\[([0-9,]*)\]", computation)
        }
        for lhs, rhs, attrs in re.findall(r"dot\(%([\w.\-]+), %([\w.\-]+)\)(.*)", computation):
            if lhs in shapes and rhs in shapes:
                dots.append((shapes[lhs], shapes[rhs], *(dims(attrs, k) for k in _DOT_DIMS)))
    return dots


def dot_flops(dot: tuple) -> int:
    """2 x batch x free(lhs) x free(rhs) x contraction for one parsed dot."""
    lhs, rhs, lhs_batch, lhs_contract, rhs_batch, rhs_contract = dot
    free_lhs = [d for i, d in enumerate(lhs) if i not in lhs_batch + lhs_contract]
    free_rhs = [d for i, d in enumerate(rhs) if i not in rhs_batch + rhs_contract]
    batch, contract = [lhs[i] for i in lhs_batch], [lhs[i] for i in lhs_contract]
    return 2 * int(np.prod(batch + free_lhs + free_rhs + contract))
