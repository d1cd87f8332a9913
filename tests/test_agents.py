"""Agent maths that a learning curve cannot show: the SA-Hyper actor step skips the primary
network's backward pass (paper Fig. 2), and TD3's delayed policy update."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from hyperjax.agents import sac, td3
from hyperjax.types import Transition

LATENT = (24, 40)  # unusual widths, so the primary's kernels are recognisable by shape
OVERRIDES = dict(hidden_sizes=(8,), latent_widths=LATENT, blocks_per_width=1)


def _kernel_uses(jaxpr, shape) -> int:
    """Number of dot_generals (in all sub-jaxprs) that read an operand of this shape."""
    count = 0
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            count += sum(tuple(v.aval.shape) == shape for v in eqn.invars)
        for param in eqn.params.values():
            subs = param if isinstance(param, (list, tuple)) else [param]
            for sub in subs:
                inner = getattr(sub, "jaxpr", None)
                if inner is not None:
                    count += _kernel_uses(getattr(inner, "jaxpr", inner), shape)
    return count


def test_sa_hyper_actor_gradient_runs_primary_forward_only():
    config = sac.SACConfig(critic="sa_hyper", critic_overrides=OVERRIDES, actor_hidden_sizes=(8,))
    critic, actor = sac.make_networks(config, action_size=2)
    losses = sac.make_losses(critic, actor)
    obs, act = jnp.ones((5, 3)), jnp.zeros((5, 2))
    critic_params = critic.init(jax.random.key(0), obs, act)
    actor_params = actor.init(jax.random.key(1), obs)
    kernel = (2, LATENT[1], LATENT[1])  # twin-stacked residual-block kernel of the last width

    forward = jax.make_jaxpr(critic.apply)(critic_params, obs, act).jaxpr
    actor_grad = jax.make_jaxpr(jax.grad(losses.actor, has_aux=True))(
        actor_params, critic_params, obs, 0.2, jax.random.normal(jax.random.key(2), act.shape)
    ).jaxpr
    critic_grad = jax.make_jaxpr(jax.grad(losses.critic, has_aux=True))(
        critic_params, Transition(obs, act, jnp.zeros(5), jnp.ones(5), obs), jnp.zeros(5)
    ).jaxpr
    n_forward = _kernel_uses(forward, kernel)
    assert n_forward == 2  # one block of two Linear layers at the last width
    # the actor's gradient reads the primary's kernels only in the forward pass...
    assert _kernel_uses(actor_grad, kernel) == n_forward
    # ...whereas a gradient that does flow through the primary reads them again (transposed)
    assert _kernel_uses(critic_grad, kernel) == 2 * n_forward


def test_td3_updates_actor_every_policy_delay_steps():
    config = td3.TD3Config(critic="mlp", critic_overrides=dict(hidden_sizes=(8,)), actor_hidden_sizes=(8,))
    agent = td3.make_agent(config, obs_size=3, action_size=2)
    state = agent.init(jax.random.key(0))
    batch = Transition(
        obs=jnp.ones((4, 3)),
        action=jnp.zeros((4, 2)),
        reward=jnp.ones(4),
        discount=jnp.ones(4),
        next_obs=jnp.ones((4, 3)),
    )
    update = jax.jit(agent.update)
    # `step` counts the updates before this one; the authors' total_it (step + 1) is tested before
    # the actor step, so their 1st, 3rd, ... update has none and the 2nd, 4th, ... has one
    odd, m_odd = update(state, batch, jax.random.key(1), 0)  # the 1st update
    even, m_even = update(state, batch, jax.random.key(1), 1)  # the 2nd
    same = jax.tree.map(np.array_equal, odd.actor_params, state.actor_params)
    assert all(jax.tree.leaves(same)) and np.isnan(m_odd["actor_loss"])
    assert not all(jax.tree.leaves(jax.tree.map(np.array_equal, even.actor_params, state.actor_params)))
    assert np.isfinite(m_even["actor_loss"])
    # critic and both targets: critic every step; targets only with the actor
    assert not all(jax.tree.leaves(jax.tree.map(np.array_equal, odd.critic_params, state.critic_params)))
    assert all(jax.tree.leaves(jax.tree.map(np.array_equal, odd.target_critic_params, state.target_critic_params)))


def test_one_update_at_paper_size():
    """SAC and TD3 with the paper-size SA-Hyper critic, Ant dims: one real update each."""
    for make_agent, config in [(sac.make_agent, sac.SACConfig()), (td3.make_agent, td3.TD3Config())]:
        agent = make_agent(config, obs_size=27, action_size=8)
        state = agent.init(jax.random.key(0))
        b = config.batch_size
        batch = Transition(
            obs=jax.random.normal(jax.random.key(1), (b, 27)),
            action=jax.random.uniform(jax.random.key(2), (b, 8), minval=-1, maxval=1),
            reward=jnp.ones(b),
            discount=jnp.ones(b),
            next_obs=jax.random.normal(jax.random.key(3), (b, 27)),
        )
        # the 2nd update (count 1): TD3's actor steps on it (the authors' phase), so both losses are real
        new_state, metrics = jax.jit(agent.update)(state, batch, jax.random.key(4), jnp.ones((), jnp.int32))
        assert np.isfinite(metrics["critic_loss"]) and np.isfinite(metrics["actor_loss"])
        w = new_state.critic_params["params"]["q"]["hyper"]["generator"]["head_0"]["kernel"]
        assert w.shape == (2, 1024, 8 * 256 + 2 * 256)
        assert agent.act(new_state, jnp.zeros(27)).shape == (8,)


def test_library_compiler_options_change_no_result():
    """The training programs' XLA options (trainer.jit_program) give bitwise the same update."""
    from hyperjax.train import trainer

    config = sac.SACConfig(critic="sa_hyper", critic_overrides=OVERRIDES, actor_hidden_sizes=(16,))
    agent = sac.make_agent(config, obs_size=5, action_size=2)
    batch = Transition(
        obs=jax.random.normal(jax.random.key(1), (8, 5)),
        action=jax.random.uniform(jax.random.key(2), (8, 2), minval=-1, maxval=1),
        reward=jnp.ones(8),
        discount=jnp.ones(8),
        next_obs=jax.random.normal(jax.random.key(3), (8, 5)),
    )
    results = []
    for jit in (jax.jit, trainer.jit_program):
        update = jit(agent.update, donate_argnums=0)
        state = agent.init(jax.random.key(0))
        for step in range(3):
            state, metrics = update(state, batch, jax.random.key(step), step)
        results.append((state, metrics))
    for a, b in zip(jax.tree.leaves(results[0]), jax.tree.leaves(results[1])):
        np.testing.assert_array_equal(a, b)


def test_sac_paper_preset_per_task_and_its_critic_learning_rates():
    """The authors' SAC usage notes (SAC/main.py:176-177): lr 1e-4 and 10,001 random steps on
    HalfCheetah, 1e-5 on the other tasks; their --lr is the policy's, the plain critics' and alpha's,
    and the hypernetwork critics keep 5e-5. Other envs: the code's defaults."""
    cheetah, hopper = sac.ALGORITHM.make_config(env="halfcheetah"), sac.ALGORITHM.make_config(env="Hopper-v5")
    assert (cheetah.actor_lr, cheetah.plain_critic_lr, cheetah.alpha_lr, cheetah.start_steps) == (1e-4,) * 3 + (10_001,)
    assert (hopper.actor_lr, hopper.plain_critic_lr, hopper.alpha_lr, hopper.start_steps) == (1e-5,) * 3 + (1001,)
    assert sac.ALGORITHM.make_config(env="pendulum") == sac.SACConfig() == sac.ALGORITHM.make_config("code_defaults")
    assert sac.ALGORITHM.make_config(env="halfcheetah", actor_lr=3e-4).actor_lr == 3e-4  # overrides win
    assert sac.critic_learning_rate(cheetah) == 5e-5  # sa_hyper: --hyper_lr
    assert sac.critic_learning_rate(dataclasses.replace(cheetah, critic="mlp")) == 1e-4  # --lr
    assert sac.critic_learning_rate(dataclasses.replace(cheetah, critic="mlp", critic_lr=2e-3)) == 2e-3
    assert not sac.SACConfig().sample_with_replacement and td3.TD3Config().sample_with_replacement
    assert td3.ALGORITHM.make_config(env="halfcheetah") == td3.TD3Config()  # TD3: one setting for all tasks


def test_sac_evaluates_tanh_mean_and_logs_the_pre_tanh_mean():
    config = sac.SACConfig(critic="mlp", critic_overrides=dict(hidden_sizes=(8,)), actor_hidden_sizes=(8,))
    agent = sac.make_agent(config, obs_size=3, action_size=2)
    state = agent.init(jax.random.key(0))
    obs = 5.0 * jnp.ones(3)
    mean = sac.make_networks(config, 2)[1].apply(state.actor_params, obs[None])[0][0]
    np.testing.assert_array_equal(agent.eval_policies["pre_tanh"](state, obs), mean)
    np.testing.assert_allclose(agent.act(state, obs), np.tanh(mean), rtol=1e-6)
