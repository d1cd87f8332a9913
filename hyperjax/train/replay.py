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


def sample(replay: Replay, key: jax.Array, batch_size: int) -> types.Transition:
    """``batch_size`` transitions drawn uniformly with replacement from the filled part."""
    idx = jax.random.randint(key, (batch_size,), 0, jnp.maximum(replay.size, 1))
    return jax.tree.map(lambda buf: buf[idx], replay.data)


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
