"""How many training steps each call of ``Trainer.run_chunk`` makes: sized from the measured speed to
about ``Plan.seconds`` (progress and Ctrl-C within seconds), ending at every step the runner stops at
(evaluations, checkpoints, snapshots, the end, the first update), in multiples of the trainer's
``step_multiple``. Pure: the runner carries a ``Sizing`` from one call to the next.

Calls are bitwise neutral (the RNG advances per training step), so sizing changes no result.
"""

from typing import NamedTuple


class Plan(NamedTuple):
    """What sizes a run's calls (fixed for the run)."""

    total_steps: int
    eval_every: int
    checkpoint_every: int
    snapshot_every: int  # 0: no snapshots
    first_update: int  # the work per step changes there (``Algorithm.first_update``)
    multiple: int  # every call a multiple of it (``Trainer.step_multiple``)
    first_call: int  # the first call's size, and the probe's once updates begin
    seconds: float  # the target length of a call
    max_steps: int  # no call longer than this


class Sizing(NamedTuple):
    """Carried from call to call."""

    target: int  # the next call's steps before the stops cut it
    rate: float | None  # smoothed training steps/s; None while not measured
    compiled: bool  # the first call (mostly compilation: no speed from it) has returned


def plan(*, first_call_steps: int, multiple: int, **fields) -> Plan:
    """The ``Plan`` (``fields``: the others by name); the first call rounded up to a multiple of ``multiple``."""
    return Plan(multiple=multiple, first_call=-(-first_call_steps // multiple) * multiple, **fields)


def start(plan: Plan) -> Sizing:
    return Sizing(plan.first_call, None, False)


def next_call(plan: Plan, sizing: Sizing, step: int) -> int:
    """The steps of the call from ``step``: the target, cut at the next step the runner must stop at."""
    next_eval = (step // plan.eval_every + 1) * plan.eval_every
    next_ckpt = (step // plan.checkpoint_every + 1) * plan.checkpoint_every
    bounds = [next_eval - step, next_ckpt - step, plan.total_steps - step]
    if plan.snapshot_every:
        bounds.append(plan.snapshot_every - step % plan.snapshot_every)
    # a call ends where the work per step changes (the first gradient step)
    if step < plan.first_update:
        bounds.append(plan.first_update - step)
    return max(plan.multiple, min(sizing.target, *bounds) // plan.multiple * plan.multiple)


def after_call(plan: Plan, sizing: Sizing, step: int, num_steps: int, elapsed: float) -> Sizing:
    """The sizing after the call of ``num_steps`` from ``step`` took ``elapsed`` seconds."""
    target, rate = num_steps, sizing.rate
    if sizing.compiled:
        call_rate = num_steps / elapsed
        rate = call_rate if rate is None else 0.7 * rate + 0.3 * call_rate
        target = int(min(plan.max_steps, 10 * num_steps, max(1, call_rate * plan.seconds)))
    if step < plan.first_update <= step + num_steps:
        # updates begin: the call after is a short probe, so no call is sized from steps that cost a
        # fraction of its own
        target, rate = plan.first_call, None
    return Sizing(target, rate, True)
