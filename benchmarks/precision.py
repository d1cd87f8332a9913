"""Mixed precision of the hypernetwork critic: what bfloat16 changes in its outputs, and its speed.

Run: python -m benchmarks.precision [--critic=sa_hyper] [--rounds=5]

Accuracy: the paper-size critic (Ant dims, batch 256) with one set of float32 parameters, applied
in float32 and with ``dtype='bfloat16'``: the relative error of Q and of the parameter gradients, and
the cosine between the two dQ1/da. Speed: one full SAC update in each dtype (``benchmarks.cases``),
both compiled in this process and timed in alternating blocks, so both see the same machine load.
Prints one JSON line and a short table.
"""

import argparse
import json
import statistics

import jax
import jax.numpy as jnp

from benchmarks import cases, timing
from hyperjax.nn import critics


def accuracy(critic: str, batch: int = 256) -> dict:
    f32 = critics.make_critic(critic, action_size=cases.ACT)
    bf16 = critics.make_critic(critic, action_size=cases.ACT, dtype="bfloat16")
    obs = jax.random.normal(jax.random.key(0), (batch, cases.OBS))
    action = jax.random.uniform(jax.random.key(1), (batch, cases.ACT), minval=-1, maxval=1)
    params = f32.init(jax.random.key(2), obs, action)

    def rel(a, b):
        num = sum(jnp.sum((x - y) ** 2) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
        return float(jnp.sqrt(num / sum(jnp.sum(y**2) for y in jax.tree.leaves(b))))

    q32, q16 = f32.apply(params, obs, action), bf16.apply(params, obs, action)
    g32, g16 = (jax.grad(lambda p, m=m: m.apply(p, obs, action).sum())(params) for m in (f32, bf16))
    a32, a16 = (jax.grad(lambda a, m=m: m.apply(params, obs, a)[0].sum())(action) for m in (f32, bf16))
    cos = jnp.sum(a32 * a16, -1) / (jnp.linalg.norm(a32, axis=-1) * jnp.linalg.norm(a16, axis=-1))
    return {
        "q_rel_error": round(rel(q16, q32), 5),
        "grad_rel_error": round(rel(g16, g32), 5),
        "dq_da_cosine_mean": round(float(cos.mean()), 5),
        "dq_da_cosine_min": round(float(cos.min()), 5),
        "output_dtype": str(q16.dtype),
        "grad_dtypes": sorted({str(x.dtype) for x in jax.tree.leaves(g16)}),
    }


def speed(critic: str, rounds: int, inner: int) -> dict:
    calls = {dtype: cases.update_jax_call("sac", critic, compute_dtype=dtype)[0] for dtype in ("float32", "bfloat16")}
    times = timing.alternate({dtype: timing.timer(call, inner) for dtype, call in calls.items()}, rounds, warmup=1)
    ratios = [b / f for f, b in zip(times["float32"], times["bfloat16"])]
    return {
        "float32_ms": round(1e3 * statistics.median(times["float32"]), 1),
        "bfloat16_ms": round(1e3 * statistics.median(times["bfloat16"]), 1),
        "bfloat16_over_float32": round(statistics.median(ratios), 3),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--critic", default="sa_hyper", choices=critics.HYPER_CRITICS)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--inner", type=int, default=3)
    args = parser.parse_args()
    device = jax.devices()[0]
    result = {"device": f"{device.platform}:{device.device_kind}", "critic": args.critic}
    result.update(accuracy(args.critic))
    result.update(speed(args.critic, args.rounds, args.inner))
    print(json.dumps(result))
    print(f"| {result['device']} | Q rel. error {result['q_rel_error']} | grad rel. error {result['grad_rel_error']} ")
    print(f"| dQ/da cosine mean {result['dq_da_cosine_mean']} (min {result['dq_da_cosine_min']}) ")
    print(f"| SAC update: f32 {result['float32_ms']} ms, bf16 {result['bfloat16_ms']} ms, ratio ")
    print(f"  {result['bfloat16_over_float32']}x")


if __name__ == "__main__":
    main()
