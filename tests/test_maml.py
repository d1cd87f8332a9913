"""MAML: the second-order meta-gradient against finite differences, the hyper policy's per-task
weights against the module, and learning on 2-D point navigation through the runner."""

import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from hyperjax.agents import maml
from hyperjax.analysis import maml_noise
from hyperjax.experiments import runner
from hyperjax.nn import policies
from hyperjax.train import logger

SMALL = dict(meta_batch=10, fast_batch=10, num_train_tasks=20, num_test_tasks=10, hidden_sizes=(32, 32))
SMALL_HYPER = dict(hyper_widths=(32, 64), hyper_hidden_sizes=(32,))


def _episodes(key, num_episodes=3, length=5, obs=2, act=2) -> maml.Episodes:
    k_obs, k_act, k_adv = jax.random.split(key, 3)
    mask = jnp.ones((num_episodes, length)).at[0, 3:].set(0.0)  # one episode ends early
    return maml.Episodes(
        obs=jax.random.normal(k_obs, (num_episodes, length, obs)),
        action=jax.random.normal(k_act, (num_episodes, length, act)),
        reward=jnp.zeros((num_episodes, length)),
        mask=mask,
        advantage=jax.random.normal(k_adv, (num_episodes, length)) * mask,
        returns=jnp.zeros(num_episodes),
        baseline=jnp.zeros(2 * obs + 4),
    )


@pytest.mark.slow  # wiring only; the maths against hand computations: tests/test_maml_closed_form.py
def test_second_order_meta_gradient_equals_finite_differences_and_differs_from_first_order():
    with jax.enable_x64(True):
        config = maml.MAMLConfig(policy="context", hidden_sizes=(4,))
        policy = maml.make_policy(config, obs_size=2, action_size=2, context_size=2)
        params = jax.tree.map(lambda x: x.astype(jnp.float64), policy.init(jax.random.key(0)))
        params = jax.tree.map(lambda x: x + 0.3, params)  # a non-zero log-std and biases: a generic point
        pre, post = _episodes(jax.random.key(1)), _episodes(jax.random.key(2))
        pre, post = (jax.tree.map(lambda x: x.astype(jnp.float64), e) for e in (pre, post))
        context = jnp.array([0.2, -0.5])
        lr = 0.5
        old = policy.dist(
            policy.task_weights(maml.adapt(policy, params, context, pre, lr), context), post.obs.reshape(-1, 2)
        )

        def loss(p, second_order):
            return maml.outer_loss_and_kl(policy, p, context, pre, post, old, lr, second_order)[0]

        flat, unravel = ravel_pytree(params)
        direction = jax.random.normal(jax.random.key(3), flat.shape, jnp.float64)
        eps = 1e-5
        numeric = (loss(unravel(flat + eps * direction), True) - loss(unravel(flat - eps * direction), True)) / (
            2 * eps
        )
        second = ravel_pytree(jax.grad(loss)(params, True))[0] @ direction
        first = ravel_pytree(jax.grad(loss)(params, False))[0] @ direction
        np.testing.assert_allclose(second, numeric, rtol=1e-6)
        assert abs(first - numeric) > 1e-3 * abs(numeric)


def test_hyper_policy_weights_made_once_per_task_equal_the_module():
    config = maml.MAMLConfig(policy="hyper", hyper_widths=(16, 32), hyper_hidden_sizes=(8,))
    policy = maml.make_policy(config, obs_size=5, action_size=3, context_size=1)
    params = policy.init(jax.random.key(0))
    obs, context = jax.random.normal(jax.random.key(1), (7, 5)), jnp.array([0.4])
    mean, log_std = policy.dist(policy.task_weights(params, context), obs)
    module = policies.HyperPolicy(3, hidden_sizes=(8,), widths=(16, 32))
    expected = module.apply({"params": params}, obs, jnp.broadcast_to(context, (7, 1)))
    np.testing.assert_allclose(mean, expected[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(log_std, expected[1])


def test_paper_sizes():
    """Parameter counts at the paper's sizes on HalfCheetah-Vel (obs 20, act 6, context 1)."""
    counts = {}
    for name in maml.POLICIES:
        policy = maml.make_policy(maml.MAMLConfig(policy=name), obs_size=20, action_size=6, context_size=1)
        shapes = jax.eval_shape(policy.init, jax.random.key(0))
        counts[name] = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes))
    assert counts["vanilla"] == (20 * 100 + 100) + (100 * 100 + 100) + (100 * 6 + 6) + 6
    assert counts["context"] == counts["vanilla"] + 100
    # docs/authors_code.md (MAML): primary 6,169,600 + heads 7,359,500 (HalfCheetah) + the log-std
    assert counts["hyper"] == 6_169_600 + 7_359_500 + 6
    assert maml.inner_lr(maml.MAMLConfig(policy="hyper")) == 5e-5
    assert maml.inner_lr(maml.MAMLConfig(policy="vanilla")) == 0.1


def test_paper_preset_is_what_the_authors_ran_and_the_figures_use_it():
    """docs/authors_code.md (MAML): first order, the pre-adaptation baseline, the authors' Ant
    headings; the improvements are named presets; Fig. 5 and Fig. 6c at paper scale set none."""
    from experiments import fig5, fig6c

    paper = maml.MAMLConfig()
    assert (paper.second_order, paper.refit_baseline, paper.heading_bug) == (False, False, True)
    assert maml.ALGORITHM.make_config("paper") == paper
    assert maml.ALGORITHM.make_config("second_order").second_order
    assert maml.ALGORITHM.make_config("refit_baseline").refit_baseline
    assert not maml.ALGORITHM.make_config("fixed_heading").heading_bug
    assert maml.ALGORITHM.run_name(paper) == "hyper"
    assert maml.ALGORITHM.run_name(maml.ALGORITHM.make_config("improved")) == "hyper_so_refit_xheading"
    names = [f.name for f in dataclasses.fields(maml.MAMLConfig)]
    for flags in (fig5.FLAGS["paper"], fig6c.FLAGS["paper"]):
        assert not any(flag.lstrip("-").split("=")[0].removeprefix("no") in names + ["preset"] for flag in flags)


# A random policy scores about -65 on point_nav and standing still -38 on average; one that reaches
# its goal scores above -10. Ten meta-iterations at reduced sizes (about a minute each on 2 cores).
# the default suite runs vanilla's (the closed-form tests of tests/test_maml_closed_form.py catch a wrong
# inner step, baseline or pairing for every policy kind in seconds); -m slow all three
@pytest.mark.parametrize(
    "policy", [p if p == "vanilla" else pytest.param(p, marks=pytest.mark.slow) for p in maml.POLICIES]
)
def test_learns_point_navigation(tmp_path, policy):
    config = maml.MAMLConfig(policy=policy, **SMALL, **(SMALL_HYPER if policy == "hyper" else {}))
    run = runner.RunConfig(
        env="point_nav", total_steps=10, eval_every=10, eval_episodes=10, logdir=str(tmp_path), checkpoint_every=10
    )
    result = runner.run("maml", run, config, verbose=False)
    rows = logger.read_csv(str(tmp_path / "metrics.csv"))
    post = [float(row["return_mean"]) for row in rows]  # after one inner step on each test task
    pre = [float(row["return_pre_mean"]) for row in rows]
    assert max(post[0], pre[0]) < -45, (pre, post)  # the untrained policy
    assert post[-1] > -30, (pre, post)  # past standing still and far past random
    if policy == "vanilla":  # it cannot tell tasks apart: what it gains on a task, adaptation made
        assert post[-1] > pre[-1] + 10, (pre, post)
    assert result["step"] == 10 and (tmp_path / "curve.png").exists()


def test_noise_outputs_table_and_plot(tmp_path):
    rng = np.random.default_rng(0)
    rows = [
        dict(policy=p, iteration=it, resample=i, **{"return": float(rng.normal(-50 + it, 1 + (p == "vanilla")))})
        for p in ("vanilla", "hyper")
        for it in (5, 10)
        for i in range(20)
    ]
    paths = maml_noise.write_outputs(str(tmp_path), rows, "test")
    stats = {(s["policy"], s["iteration"]): s for s in maml_noise.summary(rows)}
    values = [r["return"] for r in rows if r["policy"] == "hyper" and r["iteration"] == 10]
    np.testing.assert_allclose(stats["hyper", 10]["mean"], np.mean(values))
    np.testing.assert_allclose(stats["hyper", 10]["std"], np.std(values, ddof=1))
    assert stats["vanilla", 5]["n"] == 20 and len(stats) == 4
    table = open(paths["md"]).read()
    assert "| hyper | 10 | 20 |" in table and os.path.getsize(paths["png"]) > 10_000
    assert len(logger.read_csv(paths["csv"])) == 80


@pytest.mark.slow
def test_noise_experiment_runs_on_point_navigation(tmp_path):
    configs = {"context": maml.MAMLConfig(policy="context", **SMALL)}
    rows = maml_noise.run("point_nav", configs, [1, 3], 4, 2, 5, 0, str(tmp_path), verbose=False)
    assert [(r["iteration"], r["resample"]) for r in rows] == [(1, i) for i in range(4)] + [(3, i) for i in range(4)]
    assert (tmp_path / "noise.png").exists() and np.isfinite([r["return"] for r in rows]).all()


@pytest.mark.parametrize(
    "algo,run_kw,agent_kw,message",
    [
        ("maml", dict(env="ant"), {}, r"--env=ant is not a meta task; valid: point_nav, halfcheetah_vel"),
        ("maml", {}, dict(policy="lstm"), r"--policy=lstm is not valid; valid: vanilla, context, hyper"),
        ("maml", {}, dict(inner_lr=0.0), r"--inner_lr=0.0 is out of range: it must be > 0"),
        ("maml", {}, dict(meta_batch=0), r"--meta_batch=0 is out of range: it must be >= 1"),
        ("maml", {}, dict(gae_lambda=1.5), r"--gae_lambda=1.5 is out of range"),
        ("maml", {}, dict(hyper_widths=(64, 0)), r"--hyper_widths=64,0 is out of range"),
        ("sac", dict(env="halfcheetah_vel"), {}, r"--env=halfcheetah_vel is a meta-RL task .*; valid: pendulum, ant"),
    ],
)
def test_bad_settings_are_one_line_errors(algo, run_kw, agent_kw, message):
    from hyperjax.agents import registry as algorithms

    run = runner.RunConfig(**{"env": "point_nav", "total_steps": 10, "eval_every": 5, **run_kw})
    with pytest.raises(ValueError, match=message):
        runner.validate(algo, run, algorithms.get(algo).config(**agent_kw))
