"""Time of one SAC/TD3 update at paper size (batch 256 / 100, Ant dims obs 27, act 8).

Run: python -m benchmarks.update_speed [--critics sa_hyper,mlp] [--algos sac,td3] [--repeats 5]
AOT compile timed separately from the steady state; median over repeats of a timed batch of
updates, with block_until_ready around each.
"""

import argparse
import statistics
import time

import jax
import jax.numpy as jnp

from hyperjax.agents import sac, td3
from hyperjax.types import Transition

ALGOS = {"sac": (sac.SACConfig, sac.make_agent), "td3": (td3.TD3Config, td3.make_agent)}


def measure(algo: str, critic: str, obs_size=27, action_size=8, repeats=5, updates_per_repeat=3) -> dict:
    config_cls, make_agent = ALGOS[algo]
    config = config_cls(critic=critic)
    agent = make_agent(config, obs_size, action_size)
    state = agent.init(jax.random.key(0))
    b = config.batch_size
    batch = Transition(
        obs=jax.random.normal(jax.random.key(1), (b, obs_size)),
        action=jax.random.uniform(jax.random.key(2), (b, action_size), minval=-1, maxval=1),
        reward=jnp.ones(b),
        discount=jnp.ones(b),
        next_obs=jax.random.normal(jax.random.key(3), (b, obs_size)),
    )
    step = jnp.zeros((), jnp.int32)  # TD3: an actor step (the costlier of its two kinds)
    t0 = time.perf_counter()
    compiled = jax.jit(agent.update, donate_argnums=0).lower(state, batch, jax.random.key(4), step).compile()
    compile_s = time.perf_counter() - t0
    flops = (compiled.cost_analysis() or {}).get("flops", float("nan"))
    state, m = compiled(state, batch, jax.random.key(4), step)
    jax.block_until_ready(state)
    times = []
    for r in range(repeats):
        t0 = time.perf_counter()
        for i in range(updates_per_repeat):
            state, m = compiled(state, batch, jax.random.key(r * 100 + i), step)
        jax.block_until_ready(state)
        times.append((time.perf_counter() - t0) / updates_per_repeat)
    median = statistics.median(times)
    return dict(
        algo=algo,
        critic=critic,
        batch=b,
        compile_s=round(compile_s, 2),
        update_ms=round(1e3 * median, 2),
        updates_per_s=round(1 / median, 2),
        xla_gflop=round(flops / 1e9, 2),
        achieved_gflops=round(flops / 1e9 / median, 1),
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--critics", default="sa_hyper,mlp")
    parser.add_argument("--algos", default="sac,td3")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"device: {jax.devices()[0].device_kind}, jax {jax.__version__}")
    for algo in args.algos.split(","):
        for critic in args.critics.split(","):
            print(measure(algo, critic, repeats=args.repeats), flush=True)


if __name__ == "__main__":
    main()
