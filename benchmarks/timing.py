"""The one way benchmarks time things: a ``Timer`` (one timed block -> seconds per unit of work),
timed alone (``median_time``) or beside others in alternation (``alternate``), programs compiled
ahead of time and timed apart (``aot``), and the machine a result names (``machine``).

A case builds its work once (compiled, warmed up) and hands back a ``Timer``; whatever the work is
(an update, a batch of env steps, a training chunk, a worker in another process), the same
functions time it, so every script reports medians the same way.
"""

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jaxlib

# One timed block: runs the work, waits for it (``jax.block_until_ready``) and returns the seconds
# per unit (per call, per env step, per iteration: the case says which).
Timer = Callable[[], float]


def timer(call: Callable[[], Any], inner: int = 1, units: float = 1) -> Timer:
    """A ``Timer`` of ``inner`` calls of ``call`` (the last one's outputs waited for): seconds per
    call, or per unit of work where one call does ``units`` (env steps, say)."""

    def block() -> float:
        t0 = time.perf_counter()
        for _ in range(inner):
            out = call()
        jax.block_until_ready(out)
        return (time.perf_counter() - t0) / (inner * units)

    return block


def alternate(
    timers: Mapping[str, Timer], rounds: int, warmup: int = 0, progress: Callable[[int, dict], None] | None = None
) -> dict[str, list[float]]:
    """Each timer's block per round, the timers run in turn and the order reversed every round, so
    a machine whose load drifts weighs on all alike. ``warmup`` untimed blocks each first;
    ``progress(round, {name: seconds})`` after every round."""
    for _ in range(warmup):
        for block in timers.values():
            block()
    times = {name: [] for name in timers}
    for r in range(rounds):
        order = list(timers) if r % 2 == 0 else list(timers)[::-1]
        for name in order:
            times[name].append(timers[name]())
        if progress:
            progress(r, {name: times[name][-1] for name in order})
    return times


def median(block: Timer, repeats: int) -> float:
    """Median seconds per unit of ``repeats`` blocks of a ``Timer``."""
    return statistics.median(block() for _ in range(repeats))


def median_time(call: Callable[[], Any], repeats: int, inner: int = 1) -> float:
    """Median seconds per call of ``call`` over ``repeats`` blocks of ``inner`` calls."""
    return median(timer(call, inner), repeats)


def paired_ratios(times: list[float], baseline: list[float]) -> list[float]:
    """Per round, ``baseline / times`` (a speed-up over the baseline), sorted."""
    return sorted(b / t for t, b in zip(times, baseline))


def aot(fn: Callable, *args, **jit_kwargs) -> tuple[Any, float]:
    """``(compiled, seconds)``: ``fn`` jitted (unless it is already) and compiled ahead of time for ``args``."""
    jitted = fn if hasattr(fn, "lower") else jax.jit(fn, **jit_kwargs)
    t0 = time.perf_counter()
    compiled = jitted.lower(*args).compile()
    return compiled, time.perf_counter() - t0


def memory_mb(compiled) -> float | None:
    """A compiled program's own memory (arguments, outputs, temporaries), as XLA counts it."""
    try:
        m = compiled.memory_analysis()
        return round((m.temp_size_in_bytes + m.argument_size_in_bytes + m.output_size_in_bytes) / 2**20, 1)
    except Exception:  # not every backend reports it
        return None


def peak_mb() -> float | None:
    """The device allocator's peak so far (GPU/TPU; the CPU backend keeps no such count)."""
    stats = jax.devices()[0].memory_stats() or {}
    peak = stats.get("peak_bytes_in_use")
    return round(peak / 2**20, 1) if peak is not None else None


def set_precision(precision: str | None) -> str:
    """Sets jax's default matmul precision (``None``: the backend's default; on NVIDIA GPUs
    that lets f32 dots run as TF32) and returns its name for the results."""
    if precision:
        jax.config.update("jax_default_matmul_precision", precision)
    return precision or "default"


def cpu_model() -> str:
    """The CPU's model and widest vector units (Linux ``/proc/cpuinfo``), e.g. ``AMD EPYC ... (AVX2)``."""
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
    except OSError:
        return platform.processor() or platform.machine()
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "")
    flags = set(next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), []))
    units = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    bf16 = ", AVX512-BF16" if "avx512_bf16" in flags else ""
    return f"{model or platform.machine()} ({units}{bf16})"


def machine() -> dict:
    """What a result was measured on: the device, the CPU, its cores, and the library versions."""
    device = jax.devices()[0]
    versions = {"jax": jax.__version__, "jaxlib": jaxlib.__version__}
    for name in ("brax", "mujoco", "flax", "optax"):
        module = sys.modules.get(name)
        if module is not None and hasattr(module, "__version__"):
            versions[name] = module.__version__
    return {
        "device": f"{device.platform}:{device.device_kind}",
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        **versions,
    }


def log(message: str) -> None:
    """A timestamped progress line on stderr (stdout carries the results)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
