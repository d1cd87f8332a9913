"""MAML's maths against hand computations, for every policy kind, without a learning run.

The policies are tiny and linear-Gaussian where it matters: the MLP policies have no hidden layer
(``mean = x K + b``, ``x`` the state, or the state and context), and the hyper policy has no hidden
dynamic layer (``mean = (1 + g) * (s W) + b`` with ``[W | b | g] = z H + h``, ``z`` its primary
network's latent). Everything RL here is written out in numpy (float64): the REINFORCE gradient
``d log pi / d mean = (a - mean) / std^2``, ``d log pi / d log std = u^2 - 1``, its weighting by
advantages and mask, the inner step, the outer surrogate's gradient, the Fisher matrix, the linear
baseline and GAE. The only derivative taken from JAX is the hyper policy's primary network's own
(``jax.vjp`` / ``jax.jvp`` of ``PrimaryNetwork`` alone), through which the hand-written gradient of
``z`` flows to its parameters.

Breakages tried in maml.py, each failing these tests for every policy kind: the inner step's sign
flipped, or its step size x10 (in ``adapt``, in ``make_functions`` or in ``INNER_LR``); the
pre-fitted and refitted baselines swapped; the meta-batch mispaired (``pre`` rolled against the
other parts in ``objective``; the env's tasks rolled against the contexts in ``collect``; the
contexts rolled, which only the context and hyper policies can notice: the vanilla one never reads
them); first and second order swapped; observations after a terminal multiplied by the mask
instead of selected out.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from hyperjax.agents import maml, trpo
from hyperjax.envs import meta
from hyperjax.nn import hyper
from hyperjax.train import rollout as rollout_lib

OBS, ACT, CTX = 2, 2, 2  # point_nav's
WIDTHS = (4, 8)
TINY = {
    "vanilla": dict(hidden_sizes=()),
    "context": dict(hidden_sizes=()),
    "hyper": dict(hyper_hidden_sizes=(), hyper_widths=WIDTHS),
}
AUTHORS_LR = {"vanilla": 0.1, "context": 0.1, "hyper": 5e-5}  # --fast-lr, --fast-hyper-lr
GAMMA = 0.95
LR = 0.5  # the meta-gradient tests' inner step: large, so that the two orders differ clearly
x64 = functools.partial(jax.enable_x64, True)


# ---------------------------------------------------------------------------------------------
# The policies' means by hand: forward, forward-mode (jvp) and reverse-mode (vjp) in numpy.


def _np(tree):
    return jax.tree.map(lambda x: np.asarray(x, np.float64), tree)


@functools.cache
def _primary_fns():
    module = hyper.PrimaryNetwork(WIDTHS)

    def z(p, context):
        return module.apply({"params": p}, context[None])[0]

    vjp = jax.jit(lambda p, c, ct: jax.vjp(lambda q: z(q, c), p)[1](ct)[0])
    jvp = jax.jit(lambda p, c, t: jax.jvp(lambda q: z(q, c), (p,), (t,))[1])
    return jax.jit(z), vjp, jvp


class Hand:
    """``mean(params, context, obs [N, OBS]) -> [N, ACT]`` and its derivatives, by hand."""

    def __init__(self, kind: str):
        self.kind = kind

    def _x(self, context, obs):
        if self.kind == "vanilla":
            return obs
        return np.concatenate([obs, np.broadcast_to(context, (obs.shape[0], CTX))], 1)

    def _hyper_parts(self, params, context):
        gen = params["hyper"]["generator"]
        with x64():
            z = np.asarray(_primary_fns()[0](gen["primary"], jnp.asarray(context)), np.float64)
        out = z @ gen["head_0"]["kernel"] + gen["head_0"]["bias"]
        io = OBS * ACT
        return z, out[:io].reshape(OBS, ACT), out[io : io + ACT], out[io + ACT :]

    def mean(self, params, context, obs):
        if self.kind != "hyper":
            dense = params["MLP_0"]["Dense_0"]
            return self._x(context, obs) @ dense["kernel"] + dense["bias"]
        _, w, b, g = self._hyper_parts(params, context)
        return (1.0 + g) * (obs @ w) + b

    def jvp(self, params, context, obs, tangent):
        """The mean's directional derivative along ``tangent`` (a params-shaped tree)."""
        if self.kind != "hyper":
            t = tangent["MLP_0"]["Dense_0"]
            return self._x(context, obs) @ t["kernel"] + t["bias"]
        gen, tgen = params["hyper"]["generator"], tangent["hyper"]["generator"]
        z, w, _, g = self._hyper_parts(params, context)
        with x64():
            tz = _primary_fns()[2](gen["primary"], jnp.asarray(context), tgen["primary"])
        tout = (
            np.asarray(tz, np.float64) @ gen["head_0"]["kernel"] + z @ tgen["head_0"]["kernel"] + tgen["head_0"]["bias"]
        )
        io = OBS * ACT
        tw, tb, tg = tout[:io].reshape(OBS, ACT), tout[io : io + ACT], tout[io + ACT :]
        return tg * (obs @ w) + (1.0 + g) * (obs @ tw) + tb

    def vjp(self, params, context, obs, d):
        """``sum_i d_i . d mean_i / d params`` (the log-std's entry is 0)."""
        zero_log_std = np.zeros(ACT)
        if self.kind != "hyper":
            x = self._x(context, obs)
            return {"MLP_0": {"Dense_0": {"kernel": x.T @ d, "bias": d.sum(0)}}, "log_std": zero_log_std}
        gen = params["hyper"]["generator"]
        z, w, _, g = self._hyper_parts(params, context)
        dout = np.concatenate([(obs.T @ (d * (1.0 + g))).reshape(-1), d.sum(0), (d * (obs @ w)).sum(0)])
        with x64():
            dprimary = _primary_fns()[1](
                gen["primary"], jnp.asarray(context), jnp.asarray(gen["head_0"]["kernel"] @ dout)
            )
        head = {"kernel": np.outer(z, dout), "bias": dout}
        return {"hyper": {"generator": {"head_0": head, "primary": _np(dprimary)}}, "log_std": zero_log_std}


def _log_prob(mean, log_std, action):
    u = (action - mean) / np.exp(log_std)
    return np.sum(-0.5 * u**2 - log_std - 0.5 * np.log(2 * np.pi), -1)


def _grad_weighted_log_prob(hand, params, context, obs, action, weights, n):
    """The gradient of ``-(1/n) sum_i weights_i log pi(a_i | s_i)``."""
    log_std = params["log_std"]
    std = np.exp(log_std)
    u = (action - hand.mean(params, context, obs)) / std
    grads = hand.vjp(params, context, obs, -(weights[:, None] * u / std) / n)
    grads["log_std"] = -(weights[:, None] * (u**2 - 1.0)).sum(0) / n
    return grads


def _flat_episodes(e):
    e = _np(e)
    return e.obs.reshape(-1, OBS), e.action.reshape(-1, ACT), e.advantage.reshape(-1), e.mask.reshape(-1)


def _inner_grad(hand, params, context, pre):
    obs, action, advantage, mask = _flat_episodes(pre)
    return _grad_weighted_log_prob(hand, params, context, obs, action, mask * advantage, mask.sum())


def _adapted(hand, params, context, pre, lr):
    return jax.tree.map(lambda p, g: p - lr * g, params, _inner_grad(hand, params, context, pre))


def _outer_grad_at(hand, phi, context, post, old):
    """The surrogate ``-(1/n) sum m r A`` 's gradient at ``phi``, ``r = pi_phi / pi_old``."""
    obs, action, advantage, mask = _flat_episodes(post)
    old_mean, old_log_std = (np.asarray(x, np.float64) for x in old)
    ratio = np.exp(
        _log_prob(hand.mean(phi, context, obs), phi["log_std"], action) - _log_prob(old_mean, old_log_std, action)
    )
    return _grad_weighted_log_prob(hand, phi, context, obs, action, mask * ratio * advantage, mask.sum())


def _hessian_vector(hand, params, context, pre, v, eps=1e-6):
    """The inner loss's Hessian times ``v`` (central differences of its hand-written gradient)."""
    plus = _inner_grad(hand, jax.tree.map(lambda p, t: p + eps * t, params, v), context, pre)
    minus = _inner_grad(hand, jax.tree.map(lambda p, t: p - eps * t, params, v), context, pre)
    return jax.tree.map(lambda a, b: (a - b) / (2 * eps), plus, minus)


def _fisher_vector(hand, phi, context, post, v):
    """The Fisher matrix of the Gaussian policy at ``phi`` over ``post``'s valid steps, times ``v``."""
    obs, _, _, mask = _flat_episodes(post)
    var = np.exp(2 * phi["log_std"])
    out = hand.vjp(phi, context, obs, (mask / mask.sum())[:, None] * hand.jvp(phi, context, obs, v) / var)
    out["log_std"] = 2.0 * v["log_std"]
    return out


def _mean_trees(trees):
    return jax.tree.map(lambda *xs: np.mean(xs, axis=0), *trees)


def _ravel(tree):
    return np.asarray(ravel_pytree(_np(tree))[0])


# ---------------------------------------------------------------------------------------------
# Problems.


def _config(kind, **kw):
    return maml.MAMLConfig(
        **{
            "policy": kind,
            "meta_batch": 3,
            "fast_batch": 3,
            "num_train_tasks": 5,
            "num_test_tasks": 2,
            **TINY[kind],
            **kw,
        }
    )


@functools.cache
def _init(kind):
    return _np(jax.jit(maml.make_policy(_config(kind), OBS, ACT, CTX).init)(jax.random.key(0)))


def _params(kind):
    """A generic point (float64 numpy): the initial parameters, each moved by N(0, 0.2)."""
    rng = np.random.default_rng(1)
    return jax.tree.map(lambda x: x + 0.2 * rng.normal(size=x.shape), _init(kind))


def _episodes(rng, num_episodes=3, length=4):
    """Synthetic episodes (float64 numpy); the first ends after 2 steps."""
    mask = np.ones((num_episodes, length))
    mask[0, 2:] = 0.0
    return maml.Episodes(
        obs=rng.normal(size=(num_episodes, length, OBS)) * mask[..., None],
        action=rng.normal(size=(num_episodes, length, ACT)) * mask[..., None],
        reward=np.zeros((num_episodes, length)),
        mask=mask,
        advantage=rng.normal(size=(num_episodes, length)) * mask,
        returns=np.zeros(num_episodes),
        baseline=np.zeros(2 * OBS + 4),
    )


def _batch(kind, params, lr, tasks=3, near_old=True):
    """A synthetic meta-batch; ``old`` is the hand-adapted policy, moved a little unless ``near_old``
    is False (then exactly it: the KL is 0 and its Hessian the Fisher matrix)."""
    hand, rng, noise = Hand(kind), np.random.default_rng(7), np.random.default_rng(8)
    pres, posts, olds, contexts = [], [], [], []
    for _ in range(tasks):
        pre, post = _episodes(rng), _episodes(rng)
        context = rng.uniform(-1.0, 1.0, CTX)
        phi = _adapted(hand, params, context, pre, lr)
        mean = hand.mean(phi, context, post.obs.reshape(-1, OBS))
        log_std = np.broadcast_to(phi["log_std"], mean.shape)
        if near_old:
            mean, log_std = mean + 0.1 * noise.normal(size=mean.shape), log_std + 0.05
        pres.append(pre)
        posts.append(post)
        olds.append((mean, log_std))
        contexts.append(context)
    stack = lambda xs: jax.tree.map(lambda *a: np.stack(a), *xs)  # noqa: E731
    contexts = np.stack(contexts)
    return maml.Batch(contexts, contexts, stack(pres), stack(posts), stack(olds))


@functools.cache
def _functions(kind, second_order, **kw):
    """MAML's functions on point_nav (episodes of 8 steps) and jitted pieces of them."""
    env, family = meta.make("point_nav", episode_length=8)
    config = _config(kind, second_order=second_order, **kw)
    fns = maml.make_functions(config, env, family)
    return dict(
        fns=fns,
        config=config,
        family=family,
        grad=jax.jit(jax.grad(lambda p, b: fns.objective(p, b)[0])),
        loss=jax.jit(lambda p, b: fns.objective(p, b)[0]),
        fvp=jax.jit(lambda p, b, v: trpo.fisher_vector_product(lambda q: fns.objective(q, b)[1], p, 0.0)(v)),
        collect=jax.jit(fns.collect),
        meta_step=jax.jit(fns.meta_step),
        iteration=jax.jit(fns.iteration),
    )


def _close(actual, expected, rtol=1e-4):
    """Every leaf within ``rtol`` of the largest entry of its expected value."""
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(np.asarray(a, np.float64), e, rtol=0, atol=rtol * max(np.abs(e).max(), 1e-12))


# ---------------------------------------------------------------------------------------------
# Tests.


@pytest.mark.parametrize("kind", maml.POLICIES)
def test_inner_step_equals_the_closed_form(kind):
    """``adapt`` at the authors' inner step size: ``theta' - theta = -lr * grad`` by hand."""
    with x64():
        config = _config(kind)
        policy = maml.make_policy(config, OBS, ACT, CTX)
        params, pre = _params(kind), _episodes(np.random.default_rng(3))
        context = np.array([0.3, -0.7])
        lr = maml.inner_lr(config)
        adapted = jax.jit(lambda p, c, e: maml.adapt(policy, p, c, e, lr))(params, context, pre)
        update = jax.tree.map(lambda a, p: a - p, adapted, params)
        expected = jax.tree.map(lambda g: -AUTHORS_LR[kind] * g, _inner_grad(Hand(kind), params, context, pre))
        _close(update, expected, rtol=1e-4)
        assert np.abs(_ravel(expected)).max() > 0


def _task(tree, m):
    return jax.tree.map(lambda x: x[m], tree)


@pytest.mark.parametrize("kind", maml.POLICIES)
def test_meta_gradient_first_and_second_order(kind):
    """The paper preset's (first order) and ``second_order``'s gradients of the meta-batch's mean
    surrogate against the hand computations: first order ``mean_t grad L_t(theta'_t)``, second
    order ``mean_t (I - lr H_t) grad L_t(theta'_t)`` (``H_t`` the inner loss's Hessian)."""
    lr, task = LR, _task
    with x64():
        hand, params = Hand(kind), _params(kind)
        p64 = params
        batch = _batch(kind, params, lr)
        contexts = np.asarray(batch.contexts)
        phis = [_adapted(hand, p64, contexts[m], task(batch.pre, m), lr) for m in range(3)]
        first = [_outer_grad_at(hand, phis[m], contexts[m], task(batch.post, m), task(batch.old, m)) for m in range(3)]
        second = [
            jax.tree.map(lambda v, hv: v - lr * hv, g, _hessian_vector(hand, p64, contexts[m], task(batch.pre, m), g))
            for m, g in enumerate(first)
        ]
        expected = {False: _mean_trees(first), True: _mean_trees(second)}
        assert (
            np.abs(_ravel(expected[True]) - _ravel(expected[False])).max()
            > 0.05 * np.abs(_ravel(expected[False])).max()
        )
        for order in (False, True):
            f = _functions(kind, order, inner_lr=lr)
            _close(f["grad"](params, batch), expected[order], rtol=1e-4)


@pytest.mark.parametrize("kind", maml.POLICIES)
def test_fisher_vector_products_at_the_adapted_parameters(kind):
    """The Fisher-vector products of the meta-batch's mean KL (old = the adapted policies, so the
    KL is 0 at params) against the hand computations: first order ``mean_t F(theta'_t) v``, the
    Fisher matrix at the adapted parameters; second order ``(I - lr H_t) F(theta'_t) (I - lr H_t) v``."""
    lr, task = LR, _task
    with x64():
        hand, params = Hand(kind), _params(kind)
        p64 = params
        exact = _batch(kind, params, lr, near_old=False)
        contexts = np.asarray(exact.contexts)
        phis = [_adapted(hand, p64, contexts[m], task(exact.pre, m), lr) for m in range(3)]
        rng = np.random.default_rng(11)
        v = jax.tree.map(lambda x: rng.normal(size=x.shape), p64)
        fisher = [_fisher_vector(hand, phis[m], contexts[m], task(exact.post, m), v) for m in range(3)]
        expected = {False: _mean_trees(fisher)}
        pulled = []
        for m in range(3):
            pre = task(exact.pre, m)
            u = jax.tree.map(lambda a, b: a - lr * b, v, _hessian_vector(hand, p64, contexts[m], pre, v))
            fu = _fisher_vector(hand, phis[m], contexts[m], task(exact.post, m), u)
            pulled.append(jax.tree.map(lambda a, b: a - lr * b, fu, _hessian_vector(hand, p64, contexts[m], pre, fu)))
        expected[True] = _mean_trees(pulled)
        for order in (False, True):
            f = _functions(kind, order, inner_lr=lr)
            fvp = f["fvp"](params, exact, jnp.asarray(_ravel(v)))
            np.testing.assert_allclose(fvp, _ravel(expected[order]), atol=1e-4 * np.abs(_ravel(expected[order])).max())


@pytest.mark.parametrize("kind", maml.POLICIES)
def test_meta_batch_stays_paired(kind):
    """A consistent permutation of the tasks changes nothing; permuting one part of the batch
    against the others (contexts, pre, post or old) changes the objective's gradient and the TRPO
    step (the contexts only where the policy reads them). A step with no direction (all
    advantages 0) reverts and its iteration's metrics say so."""
    with x64():
        params = _params(kind)
        batch = _batch(kind, params, LR)
        f = _functions(kind, False, inner_lr=LR)
        perm = np.array([1, 2, 0])
        shuffle = lambda tree: jax.tree.map(lambda x: x[perm], tree)  # noqa: E731
        base_grad = _ravel(f["grad"](params, batch))
        np.testing.assert_allclose(_ravel(f["grad"](params, shuffle(batch))), base_grad, rtol=1e-5, atol=1e-9)
        for part in ("contexts", "pre", "post", "old"):
            mixed = batch._replace(**{part: shuffle(getattr(batch, part))})
            grad = _ravel(f["grad"](params, mixed))
            if part == "contexts" and kind == "vanilla":
                np.testing.assert_allclose(grad, base_grad, rtol=1e-6, atol=1e-9)
            else:
                assert np.abs(grad - base_grad).max() > 1e-3 * np.abs(base_grad).max(), part

        exact = _batch(kind, params, LR, near_old=False)  # KL 0 at params: a step is taken
        stepped, info = f["meta_step"](params, exact)
        assert bool(info.accepted)
        mispaired = f["meta_step"](params, exact._replace(pre=shuffle(exact.pre)))[0]
        moved = np.abs(_ravel(stepped) - _ravel(params)).max()
        permuted = f["meta_step"](params, shuffle(exact))[0]
        assert np.abs(_ravel(mispaired) - _ravel(stepped)).max() > 1e-2 * moved
        np.testing.assert_allclose(_ravel(permuted), _ravel(stepped), atol=1e-3 * moved)  # hyper: float32 weights

        still = exact._replace(post=exact.post._replace(advantage=np.zeros_like(exact.post.advantage)))
        kept, info = f["meta_step"](params, still)
        metrics = maml.step_metrics(still, info)
        assert float(metrics["reverted"]) == 1.0 and float(metrics["accepted"]) == 0.0
        np.testing.assert_array_equal(_ravel(kept), _ravel(params))
        assert float(maml.step_metrics(exact, f["meta_step"](params, exact)[1])["reverted"]) == 0.0


def _hand_advantage(obs, reward, mask, weights=None):
    """GAE(lambda=1) on the linear feature baseline, normalised (float64); also the weights.
    ``weights``: the baseline's, else fitted (ridge 1e-5) on these episodes."""
    e, t = mask.shape
    returns = np.zeros((e, t))
    acc = np.zeros(e)
    for i in reversed(range(t)):
        acc = reward[:, i] * mask[:, i] + GAMMA * acc
        returns[:, i] = acc
    steps = np.broadcast_to(np.arange(1, t + 1) / 100.0, (e, t))[..., None] * mask[..., None]
    o = obs * mask[..., None]
    features = np.concatenate([o, o**2, steps, steps**2, steps**3, mask[..., None]], -1).reshape(e * t, -1)
    if weights is None:
        lhs = features.T @ features + 1e-5 * np.eye(features.shape[1])
        weights = np.linalg.solve(lhs, features.T @ returns.reshape(-1))
    advantage = (returns.reshape(-1) - features @ weights) * mask.reshape(-1)
    valid = mask.reshape(-1) > 0
    mean = advantage[valid].mean()
    std = np.sqrt(((advantage[valid] - mean) ** 2).mean())
    return np.where(valid, (advantage - mean) / (std + 1e-8), 0.0).reshape(e, t), weights


@pytest.mark.parametrize("kind", maml.POLICIES)
def test_collect_pairs_tasks_and_adapts_with_the_pre_fitted_baseline(kind):
    """``collect`` on point_nav: the rewards are the tasks' (``-|next position - goal|``) and the
    contexts theirs; the adapted policy that collected ``post`` is the hand-computed inner step on
    ``pre`` at the authors' step size; the post-adaptation advantages use the baseline fitted on
    ``pre`` (paper), or on ``post`` with ``refit_baseline``."""
    _check_collect(kind, refit=False)


def test_refit_baseline_option():
    """``refit_baseline``: the post-adaptation advantages use a baseline fitted on ``post``."""
    _check_collect("vanilla", refit=True)  # the baseline's code path is the same for every policy


def _check_collect(kind, refit):
    hand = Hand(kind)
    f = _functions(kind, False, refit_baseline=refit)
    params = jax.tree.map(lambda x: x.astype(np.float32), _params(kind))
    pool = f["family"].sample_train(jax.random.key(5), 5)
    batch = _np(f["collect"](params, pool, jax.random.key(6)))
    np.testing.assert_allclose(batch.contexts, batch.tasks / 0.5, rtol=1e-6)
    for m in range(3):
        for eps in (batch.pre, batch.post):
            goal = batch.tasks[m]
            dist = np.linalg.norm(eps.obs[m][:, 1:] - goal, axis=-1)
            np.testing.assert_allclose(eps.reward[m][:, :-1], -dist, rtol=1e-5, atol=1e-6)
        pre_adv, pre_w = _hand_advantage(batch.pre.obs[m], batch.pre.reward[m], batch.pre.mask[m])
        np.testing.assert_allclose(batch.pre.advantage[m], pre_adv, atol=2e-3)
        post_w = None if refit else pre_w
        post_adv, _ = _hand_advantage(batch.post.obs[m], batch.post.reward[m], batch.post.mask[m], post_w)
        other, _ = _hand_advantage(
            batch.post.obs[m], batch.post.reward[m], batch.post.mask[m], pre_w if refit else None
        )
        assert np.abs(post_adv - other).max() > 0.05  # the two baselines differ here
        np.testing.assert_allclose(batch.post.advantage[m], post_adv, atol=2e-3)
        if refit:
            continue
        # The adapted policy, from this task's pre episodes and context, at the authors' step size.
        p64 = _np(params)
        pre = maml.Episodes(*(x[m] for x in batch.pre))
        phi = _adapted(hand, p64, batch.contexts[m], pre, AUTHORS_LR[kind])
        obs = batch.post.obs[m].reshape(-1, OBS)
        before = hand.mean(p64, batch.contexts[m], obs)
        shift = hand.mean(phi, batch.contexts[m], obs) - before
        _close(batch.old[0][m] - before, shift, rtol=2e-2)
        _close(batch.old[1][m][0] - p64["log_std"], phi["log_std"] - p64["log_std"], rtol=2e-2)


@pytest.mark.parametrize("kind", maml.POLICIES)
def test_steps_after_a_terminal_are_selected_out(kind):
    """NaN observations, actions and rewards after an episode's end change nothing."""
    if True:
        policy = maml.make_policy(_config(kind), OBS, ACT, CTX)
        params = jax.tree.map(lambda x: x.astype(np.float32), _params(kind))
        e, t = 3, 5
        rng = np.random.default_rng(4)
        done = np.zeros((e, t))
        done[:, -1], done[0, 1] = 1.0, 1.0  # episode 0 ends at step 1
        after = np.zeros((e, t), bool)
        after[0, 2:] = True
        obs, action, reward = (
            rng.normal(size=shape).astype(np.float32) for shape in ((e, t, OBS), (e, t, ACT), (e, t))
        )

        def trajectory(fill):
            o = np.where(after[..., None], fill, obs)
            return rollout_lib.Trajectory(
                o,
                o,
                np.where(after[..., None], fill, action),
                np.where(after, fill, reward),
                done,
                np.zeros((e, t)),
                {},
            )

        def everything(traj):
            pre = maml.process(traj, GAMMA, 1.0)
            post = maml.process(traj, GAMMA, 1.0, pre.baseline)
            context = np.array([0.1, 0.2])
            old = policy.dist(policy.task_weights(params, context), post.obs.reshape(-1, OBS))
            grad = jax.grad(lambda p: maml.outer_loss_and_kl(policy, p, context, pre, post, old, 0.1, True)[0])(params)
            return pre, post, grad

        nan, zero = jax.jit(everything)(trajectory(jnp.nan)), jax.jit(everything)(trajectory(0.0))
        assert all(np.isfinite(x).all() for x in jax.tree.leaves(nan))
        for a, b in zip(jax.tree.leaves(nan), jax.tree.leaves(zero), strict=True):
            np.testing.assert_array_equal(a, b)
