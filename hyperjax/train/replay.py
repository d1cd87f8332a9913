"""A circular replay buffer that lives on the device as arrays (pure functions)."""

import flax.struct
import jax
import jax.numpy as jnp

from hyperjax import types


@flax.struct.dataclass
class Replay:
    """``data`` leaves are ``[capacity, ...]``; ``position`` is the next slot, ``size`` <= capacity."""

    data: types.Transition
    position: jax.Array
    size: jax.Array

    @property
    def capacity(self) -> int:
        return self.data.reward.shape[0]


def init(capacity: int, example: types.Transition) -> Replay:
    """An empty buffer shaped like ``example`` (one unbatched transition)."""
    data = jax.tree.map(lambda x: jnp.zeros((capacity, *jnp.shape(x)), jnp.asarray(x).dtype), example)
    return Replay(data=data, position=jnp.zeros((), jnp.int32), size=jnp.zeros((), jnp.int32))


def add(replay: Replay, transition: types.Transition) -> Replay:
    """Writes one transition at ``position`` (overwriting the oldest when full)."""
    data = jax.tree.map(lambda buf, x: buf.at[replay.position].set(x), replay.data, transition)
    return Replay(
        data=data,
        position=(replay.position + 1) % replay.capacity,
        size=jnp.minimum(replay.size + 1, replay.capacity),
    )


def add_batch(replay: Replay, transitions: types.Transition) -> Replay:
    """Writes ``transitions`` (leaves ``[N, ...]``, ``N`` <= capacity) in order from ``position``, circularly."""
    n = transitions.reward.shape[0]
    slots = (replay.position + jnp.arange(n)) % replay.capacity
    data = jax.tree.map(lambda buf, x: buf.at[slots].set(x), replay.data, transitions)
    return Replay(
        data=data,
        position=(replay.position + n) % replay.capacity,
        size=jnp.minimum(replay.size + n, replay.capacity),
    )


def sample(replay: Replay, key: jax.Array, batch_size: int, replace: bool = True) -> types.Transition:
    """``batch_size`` transitions drawn uniformly from the filled part, with replacement or, with
    ``replace=False``, without (distinct slots, as Python's ``random.sample``; ``distinct_indices``)."""
    size = jnp.maximum(replay.size, 1)
    idx = jax.random.randint(key, (batch_size,), 0, size) if replace else distinct_indices(key, size, batch_size)
    return jax.tree.map(lambda buf: buf[idx], replay.data)


def distinct_indices(key: jax.Array, n: jax.Array, k: int) -> jax.Array:
    """``k`` distinct ints, a uniformly random ``k``-subset of ``[0, n)`` (``n`` traced, ``k`` static): ``[k]``.

    Draws ``k`` uniformly, then redraws every repeat (all but the first slot holding a value) until
    none is left: a ``lax.while_loop`` that costs one sort of ``k`` per round, and one round in most
    updates once ``n`` >> ``k**2`` (the chance of a repeat is about ``k**2 / 2n``). The rule looks only
    at which draws are equal, so relabelling ``[0, n)`` leaves its law unchanged: every ``k``-subset is
    equally likely. With ``n < k`` no such subset exists and the draws keep their repeats.
    """
    first_key, key = jax.random.split(key)

    def repeats(idx):
        order = jnp.argsort(idx, stable=True)
        ordered = idx[order]
        return jnp.zeros(k, bool).at[order].set(jnp.concatenate([jnp.zeros(1, bool), ordered[1:] == ordered[:-1]]))

    def redraw(carry):
        key, idx, repeated = carry
        key, draw_key = jax.random.split(key)
        idx = jnp.where(repeated, jax.random.randint(draw_key, (k,), 0, n), idx)
        return key, idx, repeats(idx)

    idx = jax.random.randint(first_key, (k,), 0, n)
    carry = (key, idx, repeats(idx))
    _, idx, _ = jax.lax.while_loop(lambda c: jnp.any(c[2]) & (n >= k), redraw, carry)
    return idx


# Per-task buffers (Meta-RL): ``data`` leaves ``[P, capacity, ...]``, ``position`` and ``size`` ``[P]``.


def init_per_task(num_tasks: int, capacity: int, example: types.Transition) -> Replay:
    """``num_tasks`` empty buffers of ``capacity``, stacked."""
    return jax.tree.map(lambda x: jnp.broadcast_to(x, (num_tasks, *x.shape)).copy(), init(capacity, example))


def add_to_tasks(replay: Replay, task_ids: jax.Array, transitions: types.Transition, valid: jax.Array) -> Replay:
    """Appends each task's valid transitions in order (circularly); invalid ones write nothing.

    Args:
      task_ids: ``[M]`` distinct task indices.
      transitions: leaves ``[M, K, ...]``; ``K`` must not exceed the capacity.
      valid: ``[M, K]`` bool.
    """
    capacity = replay.data.reward.shape[-1]
    position = replay.position[task_ids]  # [M]
    slot = (position[:, None] + jnp.cumsum(valid, axis=1) - 1) % capacity
    slot = jnp.where(valid, slot, capacity)  # out of range: dropped by the scatter
    rows = jnp.broadcast_to(task_ids[:, None], slot.shape)
    data = jax.tree.map(lambda buf, x: buf.at[rows, slot].set(x, mode="drop"), replay.data, transitions)
    count = jnp.sum(valid, axis=1).astype(jnp.int32)
    return Replay(
        data=data,
        position=replay.position.at[task_ids].set((position + count) % capacity),
        size=replay.size.at[task_ids].set(jnp.minimum(replay.size[task_ids] + count, capacity)),
    )


def clear_tasks(replay: Replay, task_ids: jax.Array) -> Replay:
    """Empties the buffers of ``task_ids`` (their old data is no longer sampled)."""
    return replay.replace(position=replay.position.at[task_ids].set(0), size=replay.size.at[task_ids].set(0))


def sample_from_tasks(replay: Replay, key: jax.Array, task_ids: jax.Array, batch_size: int) -> types.Transition:
    """``batch_size`` transitions per task, uniformly with replacement: leaves ``[M, batch_size, ...]``."""
    size = jnp.maximum(replay.size[task_ids], 1)[:, None]
    idx = jax.random.randint(key, (task_ids.shape[0], batch_size), 0, size)
    return jax.tree.map(lambda buf: buf[task_ids[:, None], idx], replay.data)
