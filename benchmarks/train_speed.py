"""End-to-end training throughput (env step + update per step, the paper's protocol) and the
compile time of the training program, for 1 and several seeds in one program.

Run: python -m benchmarks.train_speed --env=ant --critic=mlp --seeds=1,5 [--chunk=50]
A command-line front to ``benchmarks.cases.train`` (the suite's case), in this process.
"""

import argparse

import jax

from benchmarks import cases


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--env", default="ant")
    parser.add_argument("--critic", default="mlp")
    parser.add_argument("--seeds", default="1,5")
    parser.add_argument("--chunk", type=int, default=50)
    args = parser.parse_args()
    print(f"device: {jax.devices()[0].device_kind}, jax {jax.__version__}")
    for seeds in args.seeds.split(","):
        print(cases.train(args.env, args.critic, int(seeds), args.chunk), flush=True)


if __name__ == "__main__":
    main()
