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


def sample(replay: Replay, key: jax.Array, batch_size: int) -> types.Transition:
    """``batch_size`` transitions drawn uniformly with replacement from the filled part."""
    idx = jax.random.randint(key, (batch_size,), 0, jnp.maximum(replay.size, 1))
    return jax.tree.map(lambda buf: buf[idx], replay.data)
