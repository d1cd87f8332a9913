"""End-to-end training throughput (env step + update per step, the paper's protocol) and the
compile time of the training program, for 1 and several seeds in one program.

Run: python -m benchmarks.train_speed --env=ant --critic=mlp --seeds=1,5 [--chunk=50]
Each case builds the real trainer (hyperjax.train.loop) and times one chunk after warm-up,
past the random phase so that every step acts with the policy and updates.
"""

import argparse
import time

import jax
import numpy as np

from hyperjax.agents import sac
from hyperjax.envs import registry
from hyperjax.experiments import runner
from hyperjax.train import loop


def measure(env_name: str, backend: str, critic: str, num_seeds: int, chunk: int) -> dict:
    env = registry.make(env_name, backend=backend)
    config = sac.SACConfig(critic=critic)
    agent = sac.make_agent(config, env.observation_size, env.action_size)
    trainer = loop.make_trainer(
        agent,
        env,
        loop.LoopConfig(
            batch_size=config.batch_size,
            start_steps=0,
            update_after=runner.update_after("sac", config),
            buffer_size=10_000,
            chunk_steps=chunk,
            eval_episodes=1,
            episode_length=registry.default_episode_length(env_name),
        ),
    )
    state = trainer.init(jax.vmap(jax.random.key)(np.arange(num_seeds)))
    start = config.batch_size + 1  # every step of the timed chunks updates
    t0 = time.perf_counter()
    state, _ = trainer.run_chunk(state, start)
    jax.block_until_ready(state)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    state, _ = trainer.run_chunk(state, start + chunk)
    jax.block_until_ready(state)
    steady = time.perf_counter() - t0
    return dict(
        env=env_name,
        backend=backend,
        critic=critic,
        seeds=num_seeds,
        compile_plus_first_chunk_s=round(first, 1),
        compile_s_estimate=round(first - steady, 1),
        env_steps_per_s=round(chunk / steady, 2),
        seed_steps_per_s=round(num_seeds * chunk / steady, 2),
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--env", default="ant")
    parser.add_argument("--backend", default=registry.DEFAULT_BACKEND)
    parser.add_argument("--critic", default="mlp")
    parser.add_argument("--seeds", default="1,5")
    parser.add_argument("--chunk", type=int, default=50)
    args = parser.parse_args()
    print(f"device: {jax.devices()[0].device_kind}, jax {jax.__version__}")
    for seeds in args.seeds.split(","):
        print(measure(args.env, args.backend, args.critic, int(seeds), args.chunk), flush=True)


if __name__ == "__main__":
    main()
