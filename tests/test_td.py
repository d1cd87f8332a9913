"""TD targets against hand-worked numbers; TD3's losses; SAC's temperature moves towards its target."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from hyperjax.agents import sac, td, td3
from hyperjax.types import Transition


def test_soft_target_by_hand():
    r = jnp.array([1.0, 0.5, -2.0])
    discount = jnp.array([1.0, 0.0, 1.0])  # the second transition is a true terminal
    q = jnp.array([[10.0, 3.0, -1.0], [8.0, 4.0, -3.0]])  # twin target critics at (s', a')
    log_prob = jnp.array([-1.0, 2.0, 0.5])
    target = td.soft_target(r, discount, q, log_prob, alpha=0.2, gamma=0.9, reward_scale=2.0)
    # 2*1 + 0.9*(8 + 0.2) = 9.38;  2*0.5 + 0 = 1;  2*(-2) + 0.9*(-3 - 0.1) = -6.79
    np.testing.assert_allclose(target, [9.38, 1.0, -6.79], rtol=1e-6)


def test_clipped_double_q_target_and_smoothing_by_hand():
    r, discount = jnp.array([1.0, 2.0]), jnp.array([1.0, 0.0])
    q = jnp.array([[5.0, 7.0], [6.0, 1.0]])
    np.testing.assert_allclose(td.clipped_double_q_target(r, discount, q, gamma=0.5), [3.5, 2.0], rtol=1e-6)
    a = jnp.array([[0.9, -0.2, 0.0]])
    noise = jnp.array([[0.3, -0.8, 0.1]])  # clipped to +-0.5 first, then the action to [-1, 1]
    np.testing.assert_allclose(td.smoothed_action(a, noise, noise_clip=0.5), [[1.0, -0.7, 0.1]], rtol=1e-6)


def test_targets_carry_no_gradient_and_loss_by_hand():
    grad = jax.grad(lambda v: td.td_target(jnp.ones(2), jnp.ones(2), v, gamma=0.9).sum())(jnp.ones(2))
    np.testing.assert_array_equal(grad, 0.0)
    q = jnp.array([[1.0, 2.0], [0.0, 4.0]])
    # critic 1: ((1-1)^2 + (2-3)^2)/2 = 0.5; critic 2: ((0-1)^2 + (4-3)^2)/2 = 1
    assert float(td.q_regression_loss(q, jnp.array([1.0, 3.0]))) == 1.5


def _batch(n=16, obs=3, act=2):
    keys = jax.random.split(jax.random.key(9), 3)
    return Transition(
        obs=jax.random.normal(keys[0], (n, obs)),
        action=jax.random.uniform(keys[1], (n, act), minval=-1, maxval=1),
        reward=jnp.ones(n),
        discount=jnp.ones(n),
        next_obs=jax.random.normal(keys[2], (n, obs)),
    )


def _numpy_twin_mlp(critic_params, obs, action) -> np.ndarray:
    """The twin one-hidden-layer MLP critics in float64 numpy from their parameters: ``[2, B]``."""
    layers = {
        k: jax.tree.map(lambda x: np.asarray(x, np.float64), v)
        for k, v in critic_params["params"]["q"]["MLP_0"].items()
    }
    x = np.concatenate([obs, action], axis=-1).astype(np.float64)
    hidden = np.maximum(
        np.einsum("bi,kio->kbo", x, layers["Dense_0"]["kernel"]) + layers["Dense_0"]["bias"][:, None], 0
    )
    return (np.einsum("kbi,kio->kbo", hidden, layers["Dense_1"]["kernel"]) + layers["Dense_1"]["bias"][:, None])[..., 0]


def _numpy_actor(actor_params, obs) -> np.ndarray:
    """TD3's one-hidden-layer actor, ``tanh(W2 relu(W1 s + b1) + b2)``, in float64 numpy: ``[B, act]``."""
    layers = {
        k: jax.tree.map(lambda x: np.asarray(x, np.float64), v) for k, v in actor_params["params"]["MLP_0"].items()
    }
    hidden = np.maximum(np.asarray(obs, np.float64) @ layers["Dense_0"]["kernel"] + layers["Dense_0"]["bias"], 0)
    return np.tanh(hidden @ layers["Dense_1"]["kernel"] + layers["Dense_1"]["bias"])


def test_td3_losses_against_numpy():
    """The critic loss (sum over the twins of the mean squared TD error) and the actor loss (-mean Q1
    at the actor's action, not min Q or Q2) against a numpy forward pass of the same parameters."""
    config = td3.TD3Config(critic="mlp", critic_overrides=dict(hidden_sizes=(8,)), actor_hidden_sizes=(8,))
    critic, actor = td3.make_networks(config, action_size=2)
    losses = td3.make_losses(critic, actor)
    batch = _batch()
    critic_params = critic.init(jax.random.key(0), batch.obs, batch.action)
    actor_params = actor.init(jax.random.key(1), batch.obs)
    target = np.linspace(-1, 1, 16)
    loss, _ = losses.critic(critic_params, batch, jnp.asarray(target, jnp.float32))
    q = _numpy_twin_mlp(critic_params, np.asarray(batch.obs), np.asarray(batch.action))
    assert not np.allclose(q[0], q[1])  # the twins differ, so a loss on one of them twice would show
    np.testing.assert_allclose(float(loss), np.sum(np.mean((q - target) ** 2, axis=-1)), rtol=1e-5)
    q_pi = _numpy_twin_mlp(critic_params, np.asarray(batch.obs), _numpy_actor(actor_params, batch.obs))
    assert np.mean(q_pi[0]) != np.mean(np.min(q_pi, axis=0))
    np.testing.assert_allclose(float(losses.actor(actor_params, critic_params, batch.obs)), -q_pi[0].mean(), rtol=1e-5)


def test_autotune_alpha_moves_towards_the_target_entropy():
    """Entropy above -act_size lowers alpha; a near-deterministic policy (entropy below) raises it."""
    config = sac.SACConfig(
        critic="mlp", critic_overrides=dict(hidden_sizes=(8,)), actor_hidden_sizes=(8,), autotune_alpha=True
    )
    agent = sac.make_agent(config, obs_size=3, action_size=2)
    update = jax.jit(agent.update)
    batch = _batch()

    def alphas(state, steps=20):
        out = []
        for i in range(steps):
            state, metrics = update(state, batch, jax.random.key(i), i)
            out.append((float(metrics["alpha"]), float(metrics["entropy"])))
        return out, float(jnp.exp(state.log_alpha))

    wide = agent.init(jax.random.key(0))  # log-std ~ 0: entropy ~ +1 > target -2
    history, final = alphas(wide)
    assert history[0][1] > -2 and final < config.alpha
    # log-std at its floor: entropy far below -2
    params = wide.actor_params["params"]
    narrow_head = {"kernel": jnp.zeros_like(params["log_std"]["kernel"]), "bias": jnp.full((2,), -10.0)}
    narrow = dataclasses.replace(wide, actor_params={"params": {**params, "log_std": narrow_head}})
    history, final = alphas(narrow)
    assert history[0][1] < -2 and final > config.alpha
    # with autotune off the temperature stays put
    fixed = sac.make_agent(dataclasses.replace(config, autotune_alpha=False), obs_size=3, action_size=2)
    start = fixed.init(jax.random.key(0))
    state, _ = jax.jit(fixed.update)(start, batch, jax.random.key(0), 0)
    assert float(state.log_alpha) == float(start.log_alpha)
