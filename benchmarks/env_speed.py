"""Environment steps/s of one environment per Brax backend (a jitted lax.scan of steps).

Run: python -m benchmarks.env_speed --env=ant --backends=mjx,generalized,positional,spring
"""

import argparse
import time

import jax
import jax.numpy as jnp

from hyperjax.envs import registry


def measure(env_name: str, backend: str, steps: int = 1000) -> dict:
    env = registry.make(env_name, backend=backend)
    action = jnp.zeros(env.action_size)

    @jax.jit
    def rollout(state):
        return jax.lax.scan(lambda s, _: (env.step(s, action), ()), state, None, steps)[0]

    state = jax.jit(env.reset)(jax.random.key(0))
    t0 = time.perf_counter()
    state = jax.block_until_ready(rollout(state))
    compile_s = time.perf_counter() - t0
    # a second warm-up call: reset's output differs in weak types from step's, which retraces once
    state = jax.block_until_ready(rollout(state))
    t0 = time.perf_counter()
    jax.block_until_ready(rollout(state))
    return dict(
        env=env_name,
        backend=backend,
        compile_s=round(compile_s, 1),
        steps_per_s=round(steps / (time.perf_counter() - t0)),
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--env", default="ant")
    parser.add_argument("--backends", default=",".join(registry.BACKENDS))
    args = parser.parse_args()
    print(f"device: {jax.devices()[0].device_kind}, jax {jax.__version__}")
    for backend in args.backends.split(","):
        print(measure(args.env, backend), flush=True)


if __name__ == "__main__":
    main()
