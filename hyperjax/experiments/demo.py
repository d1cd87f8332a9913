"""Builds every registered critic at paper size and prints its parameter table.

Run: ``python -m hyperjax.experiments.demo``  (a few seconds on a laptop CPU)
"""

import time

from absl import app

from hyperjax.nn import summary

PAPER_DIMS = {"Ant (Brax)": (27, 8), "HalfCheetah": (17, 6), "Ant (gym v2)": (111, 8)}


def main(argv):
    del argv
    start = time.perf_counter()
    print("Parameters of ONE Q network (the twin critic has twice as many):\n")
    print(summary.critic_table(PAPER_DIMS))
    print(f"\nbuilt {len(PAPER_DIMS) * 8} critics in {time.perf_counter() - start:.1f}s")


if __name__ == "__main__":
    app.run(main)
